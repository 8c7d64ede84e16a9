"""host.identity.passwords: Argon2id hashes, checks and rehash on stronger parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from host.identity.passwords import Hasher

CHEAP = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8192, "ARGON2_PARALLELISM": 1}
STRONGER = {**CHEAP, "ARGON2_TIME_COST": 2}


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(CHEAP)


def test_hashes_are_argon2id_with_the_configured_parameters(hasher):
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert "correct horse" not in stored


def test_the_same_secret_hashes_differently_each_time(hasher):
    # A fresh salt per hash: equal passwords do not give equal rows.
    assert hasher.hash("correct horse") != hasher.hash("correct horse")


def test_the_right_secret_matches(hasher):
    assert hasher.verify(hasher.hash("correct horse"), "correct horse") == (True, False)


@pytest.mark.parametrize("wrong", ["correct horsE", "correct horse ", "", "correct", "正确的马"])
def test_a_wrong_secret_does_not_match(hasher, wrong):
    assert hasher.verify(hasher.hash("correct horse"), wrong) == (False, False)


def test_unicode_and_nul_in_secrets_are_kept_exactly(hasher):
    stored = hasher.hash("密码\x00after-nul")
    assert hasher.verify(stored, "密码\x00after-nul") == (True, False)
    assert hasher.verify(stored, "密码") == (False, False)


@pytest.mark.parametrize("secret", ["canopy-no-such-account", "", "anything"])
def test_an_unknown_account_never_matches(hasher, secret):
    # None stands for "no such account": even the dummy hash's own secret does not match.
    assert hasher.verify(None, secret) == (False, False)


def test_an_empty_stored_hash_never_matches(hasher):
    assert hasher.verify("", "canopy-no-such-account") == (False, False)


def test_defaults_are_the_rfc_9106_low_memory_profile():
    stored = Hasher({}).hash("x")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_needs_rehash_when_the_parameters_rise(hasher):
    stored = hasher.hash("correct horse")
    assert Hasher(STRONGER).verify(stored, "correct horse") == (True, True)
    # A wrong secret never asks for a rehash (nothing to rehash it with).
    assert Hasher(STRONGER).verify(stored, "wrong") == (False, False)


def test_no_rehash_with_the_same_parameters(hasher):
    stored = Hasher(STRONGER).hash("correct horse")
    assert Hasher(STRONGER).verify(stored, "correct horse") == (True, False)


def test_an_argon2i_hash_still_verifies_and_asks_to_become_argon2id(hasher):
    legacy = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.I).hash("correct horse")
    assert legacy.startswith("$argon2i$")
    assert hasher.verify(legacy, "correct horse") == (True, True)


@pytest.mark.parametrize(
    "stored",
    [
        "not-a-hash",
        "$argon2id$",
        "$argon2id$v=19$m=8192,t=1,p=1$garbage",
        "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        "plaintext-password",
        "$argon2id$v=19$m=8192,t=1,p=1$\x00\x00$\x00",
    ],
)
def test_a_malformed_stored_hash_does_not_match_and_does_not_raise(hasher, stored):
    assert hasher.verify(stored, "plaintext-password") == (False, False)


def test_a_truncated_hash_does_not_match(hasher):
    stored = hasher.hash("correct horse")
    assert hasher.verify(stored[:-4], "correct horse") == (False, False)


def test_a_secret_that_is_not_valid_unicode_does_not_match(hasher):
    # A lone surrogate (possible from a JSON body's "\ud800") can never be a stored secret.
    assert hasher.verify(hasher.hash("correct horse"), "\ud800") == (False, False)
    assert hasher.verify(None, "\ud800") == (False, False)

"""host.oauth.pkce: S256 only, verifier and challenge syntax."""

from __future__ import annotations

import base64
import hashlib

import pytest

from host.oauth import pkce
from host.oauth.errors import InvalidGrant, InvalidRequest

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B


def test_s256_matches_rfc7636_appendix_b():
    assert pkce.s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_is_base64url_of_sha256_without_padding():
    verifier = "a" * 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce.s256(verifier) == expected


def test_a_good_challenge_passes_and_verifies():
    challenge = pkce.s256(VERIFIER)
    pkce.check_challenge(challenge, "S256")
    pkce.verify(VERIFIER, challenge)


@pytest.mark.parametrize(
    ("challenge", "method", "message"),
    [
        (None, "S256", "code_challenge is required"),
        ("", "S256", "code_challenge is required"),
        (pkce.s256(VERIFIER), None, "code_challenge_method is required"),
        (pkce.s256(VERIFIER), "", "code_challenge_method is required"),
        (pkce.s256(VERIFIER), "plain", "'plain' is not supported"),
        (pkce.s256(VERIFIER), "s256", "'s256' is not supported"),
        (VERIFIER + "x", "S256", "must be 43 base64url characters"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=", "S256", "must be 43 base64url characters"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c\n", "S256", "must be 43 base64url characters"),
        (["x"], "S256", "must be 43 base64url characters"),
    ],
)
def test_bad_challenges_are_refused(challenge, method, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        pkce.check_challenge(challenge, method)
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        (None, "code_verifier is required"),
        ("", "code_verifier is required"),
        ("a" * 42, "43-128 characters"),
        ("a" * 129, "43-128 characters"),
        ("a" * 42 + " ", "43-128 characters"),
        ("a" * 42 + "+", "43-128 characters"),
        ("a" * 43 + "\n", "43-128 characters"),
    ],
)
def test_malformed_verifiers_are_invalid_requests(verifier, message):
    with pytest.raises(InvalidRequest, match=message):
        pkce.verify(verifier, pkce.s256(VERIFIER))


def test_a_wrong_verifier_is_an_invalid_grant():
    with pytest.raises(InvalidGrant, match="does not match") as caught:
        pkce.verify("b" * 43, pkce.s256(VERIFIER))
    assert caught.value.error == "invalid_grant"


def test_a_plain_challenge_does_not_verify_as_s256():
    # A client that sent its verifier as the challenge ("plain") cannot get through.
    with pytest.raises(InvalidGrant):
        pkce.verify(VERIFIER, VERIFIER)

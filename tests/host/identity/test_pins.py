"""host.identity.pins: payment PINs as keyed HMAC-SHA256 values, key ids, rotation, legacy Argon2."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import pytest

from host.config import ConfigError
from host.identity import pins
from host.identity.passwords import Hasher
from host.identity.pins import MALFORMED, UNKNOWN_KEY, InvalidPin, PinHasher, PinKeyring, derive_key, key_id

CHEAP = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8192, "ARGON2_PARALLELISM": 1}
KEY = b"pin-key-one-for-the-tests-0123456789abcdef"
OTHER_KEY = b"pin-key-two-for-the-tests-0123456789abcdef"
SECRET = "secret-key-for-the-pin-tests-0123456789abcdef"
CUSTOMER, OTHER_CUSTOMER = "c" * 32, "d" * 32
PIN = "147258"
STORED = re.compile(r"hmac-sha256\$[0-9a-f]{12}\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}\Z")


@pytest.fixture(scope="module")
def legacy() -> Hasher:
    return Hasher(CHEAP)


def make(key: bytes = KEY, old=(), legacy: Hasher | None = None) -> PinHasher:
    return PinHasher(PinKeyring(key, old), legacy=(lambda: legacy) if legacy is not None else None)


def from_config(legacy: Hasher | None = None, **config) -> PinHasher:
    return PinHasher(PinKeyring.from_config(config), legacy=(lambda: legacy) if legacy is not None else None)


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 written out, to check the derivation independently of the library."""
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


# --- the stored value ---------------------------------------------------------------------


def test_a_value_is_self_describing_and_fits_its_column():
    stored = make().hash(CUSTOMER, PIN)
    assert STORED.match(stored), stored
    assert len(stored) <= 200  # customers.pin_hash is String(200)
    scheme, made_with, _, _ = stored.split("$")
    assert (scheme, made_with) == ("hmac-sha256", key_id(KEY))
    assert PIN not in stored


def test_the_value_is_the_hmac_of_salt_customer_and_pin_under_the_key():
    stored = make().hash(CUSTOMER, PIN)
    _, _, salt_text, mac_text = stored.split("$")
    salt = pins._decode(salt_text)
    message = salt + len(CUSTOMER).to_bytes(2, "big") + CUSTOMER.encode() + PIN.encode()
    assert len(salt) == pins.SALT_BYTES
    assert pins._decode(mac_text) == hmac.new(KEY, message, hashlib.sha256).digest()


def test_the_right_pin_matches_without_a_rehash():
    hasher = make()
    assert hasher.verify(CUSTOMER, hasher.hash(CUSTOMER, PIN), PIN) == pins.PinVerification(True)


@pytest.mark.parametrize("wrong", ["147259", "741852", "000000", "14725", "1472580", " 147258", "147258 ", "147258\x00",
                                   "１４７２５８", "258369"])
def test_a_wrong_pin_does_not_match(wrong):
    hasher = make()
    assert hasher.verify(CUSTOMER, hasher.hash(CUSTOMER, PIN), wrong) == pins.PinVerification(False)


def test_the_same_pin_gives_different_values_per_customer_and_per_setting():
    hasher = make()
    values = {hasher.hash(CUSTOMER, PIN), hasher.hash(CUSTOMER, PIN), hasher.hash(OTHER_CUSTOMER, PIN)}
    assert len(values) == 3  # a random salt each time
    salts = {value.split("$")[2] for value in values}
    assert len(salts) == 3


def test_one_customers_value_does_not_work_for_another():
    # Copying a row's value onto another customer (whose PIN the copier knows) gets nowhere.
    hasher = make()
    assert not hasher.verify(OTHER_CUSTOMER, hasher.hash(CUSTOMER, PIN), PIN).matches


@pytest.mark.parametrize("customer", ["", None, 12345])
def test_a_value_belongs_to_a_customer_id(customer):
    with pytest.raises(TypeError):
        make().hash(customer, PIN)


# --- the PIN policy and hostile input -----------------------------------------------------


@pytest.mark.parametrize("pin", ["12345", "1234567", "", "abcdef", "１２３４５６", "12345\n", "12 345", "12345a",
                                 "٠١٢٣٤٥", 123456, None, b"123456", ["123456"]])
def test_a_new_pin_must_be_six_ascii_digits(pin):
    with pytest.raises(InvalidPin, match="6 digits"):
        make().hash(CUSTOMER, pin)


@pytest.mark.parametrize(
    "pin",
    [None, 147258, 147258.0, b"147258", bytearray(b"147258"), ["147258"], {"pin": "147258"}, "",
     "1" * (pins.MAX_PIN_LENGTH + 1), "147258" + "0" * 10_000, "1" * 10_000_000, "\ud800", "14725\ud800"],
    ids=["none", "int", "float", "bytes", "bytearray", "list", "dict", "empty", "one-too-long", "pin-then-more",
         "ten-million", "surrogate", "surrogate-after"],
)
def test_input_that_is_not_a_pin_string_never_matches_and_never_raises(pin):
    hasher = make()
    assert hasher.verify(CUSTOMER, hasher.hash(CUSTOMER, PIN), pin) == pins.PinVerification(False)


def test_oversized_input_is_refused_without_being_read(monkeypatch):
    hasher = make()
    stored = hasher.hash(CUSTOMER, PIN)
    monkeypatch.setattr(pins, "_mac", lambda *args: pytest.fail("an oversized PIN reached the MAC"))
    assert not hasher.verify(CUSTOMER, stored, PIN + "0" * 10_000).matches


def test_no_stored_value_never_matches():
    for stored in (None, ""):
        assert make().verify(CUSTOMER, stored, PIN) == pins.PinVerification(False)


# --- the comparison -----------------------------------------------------------------------


def flip(stored: str, index: int) -> str:
    """``stored`` with one byte of its MAC changed."""
    head, mac_text = stored.rsplit("$", 1)
    mac = bytearray(pins._decode(mac_text))
    mac[index] ^= 0x01
    return f"{head}${pins._encode(bytes(mac))}"


@pytest.mark.parametrize("index", [0, 15, 31])
def test_every_byte_of_the_mac_counts(index):
    hasher = make()
    stored = hasher.hash(CUSTOMER, PIN)
    assert hasher.verify(CUSTOMER, stored, PIN).matches
    assert not hasher.verify(CUSTOMER, flip(stored, index), PIN).matches


def test_the_verdict_is_the_constant_time_comparison_of_the_whole_mac(monkeypatch):
    hasher = make()
    stored = hasher.hash(CUSTOMER, PIN)
    calls = []

    def spy(answer):
        def compare(a, b):
            calls.append((a, b))
            return answer

        return compare

    # What hmac.compare_digest says decides, both ways: no other comparison of the secret
    # value that could end early at the first differing byte.
    monkeypatch.setattr(pins.hmac, "compare_digest", spy(False))
    assert not hasher.verify(CUSTOMER, stored, PIN).matches
    monkeypatch.setattr(pins.hmac, "compare_digest", spy(True))
    assert hasher.verify(CUSTOMER, stored, "000000").matches
    assert [(len(a), len(b)) for a, b in calls] == [(32, 32), (32, 32)]
    assert calls[0][1] == pins._decode(stored.rsplit("$", 1)[1])


# --- malformed stored values --------------------------------------------------------------


def malformed_values() -> dict[str, object]:
    good = make().hash(CUSTOMER, PIN)
    scheme, made_with, salt, mac = good.split("$")
    return {
        "truncated": good[:-1],
        "truncated-more": good[:-20],
        "no-mac": f"{scheme}${made_with}${salt}",
        "scheme-only": "hmac-sha256$",
        "empty-parts": "hmac-sha256$$$",
        "wrong-prefix": f"hmac-sha1${made_with}${salt}${mac}",
        "upper-prefix": f"HMAC-SHA256${made_with}${salt}${mac}",
        "other-scheme": f"pbkdf2_sha256${made_with}${salt}${mac}",
        "no-prefix": f"{made_with}${salt}${mac}",
        "bad-base64-char": f"{scheme}${made_with}${salt[:-1]}!${mac}",
        "standard-base64": f"{scheme}${made_with}${salt}${mac[:-1]}+",
        "padded-base64": f"{scheme}${made_with}${salt}${mac}=",
        "key-id-upper": f"{scheme}${made_with.upper()}${salt}${mac}",
        "key-id-short": f"{scheme}${made_with[:-1]}${salt}${mac}",
        "extra-part": good + "$AAAA",
        "trailing-newline": good + "\n",
        "leading-space": " " + good,
        "nul": good[:-1] + "\x00",
        "plaintext": PIN,
        "bcrypt": "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "bytes": good.encode(),
        "number": 147258,
    }


@pytest.mark.parametrize("name", list(malformed_values()))
def test_a_malformed_value_fails_closed_and_is_logged(caplog, name):
    stored = malformed_values()[name]
    with caplog.at_level(logging.ERROR, logger="canopy.identity"):
        result = make().verify(CUSTOMER, stored, PIN)
    assert result == pins.PinVerification(False, problem=MALFORMED)
    [record] = caplog.records
    assert CUSTOMER in record.getMessage() and "malformed" in record.getMessage()
    assert PIN not in record.getMessage()


# --- keys ---------------------------------------------------------------------------------


def test_a_value_made_with_another_key_fails_and_the_log_names_the_cause(caplog):
    stored = make(OTHER_KEY).hash(CUSTOMER, PIN)
    with caplog.at_level(logging.ERROR, logger="canopy.identity"):
        result = make(KEY).verify(CUSTOMER, stored, PIN)
    assert result == pins.PinVerification(False, problem=UNKNOWN_KEY)
    [record] = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.ERROR
    assert key_id(OTHER_KEY) in message and key_id(KEY) in message and "PIN_KEYS_OLD" in message
    assert CUSTOMER in message
    assert PIN not in message and stored.split("$")[3] not in message


def test_a_value_made_with_another_key_does_not_match_even_with_a_forged_key_id():
    # Relabelling a value with the current key's id does not make the other key's MAC pass.
    scheme, _, salt, mac = make(OTHER_KEY).hash(CUSTOMER, PIN).split("$")
    relabelled = f"{scheme}${key_id(KEY)}${salt}${mac}"
    assert make(KEY).verify(CUSTOMER, relabelled, PIN) == pins.PinVerification(False)


def test_an_old_key_is_accepted_and_the_value_made_again_with_the_current_key():
    stored = make(OTHER_KEY).hash(CUSTOMER, PIN)
    rotated = make(KEY, old=[OTHER_KEY])
    result = rotated.verify(CUSTOMER, stored, PIN)
    assert result.matches and result.problem is None
    assert STORED.match(result.rehashed) and result.rehashed.split("$")[1] == key_id(KEY)
    assert make(KEY).verify(CUSTOMER, result.rehashed, PIN) == pins.PinVerification(True)  # no old key needed now
    assert rotated.verify(CUSTOMER, result.rehashed, PIN) == pins.PinVerification(True)  # and no second rehash


def test_a_wrong_pin_under_an_old_key_is_not_rehashed():
    stored = make(OTHER_KEY).hash(CUSTOMER, PIN)
    assert make(KEY, old=[OTHER_KEY]).verify(CUSTOMER, stored, "000000") == pins.PinVerification(False)


def test_key_ids_name_keys_and_say_nothing_of_them():
    assert key_id(KEY) == key_id(bytes(KEY))
    assert key_id(KEY) != key_id(OTHER_KEY)
    assert re.fullmatch(r"[0-9a-f]{12}", key_id(KEY))
    assert key_id(KEY) not in hashlib.sha256(KEY).hexdigest()  # not a plain digest of the key


# --- keys from the configuration ----------------------------------------------------------


def test_without_pin_key_the_key_is_derived_from_the_secret_key_with_hkdf():
    keyring = PinKeyring.from_config({"SECRET_KEY": SECRET})
    assert keyring.current == derive_key(SECRET.encode()) == hkdf_sha256(SECRET.encode(), b"canopy payment PIN key")
    assert keyring.current != SECRET.encode()


def test_pin_key_is_used_as_it_is():
    keyring = PinKeyring.from_config({"SECRET_KEY": SECRET, "PIN_KEY": KEY.decode()})
    assert keyring.current == KEY


def test_no_key_at_all_is_a_config_error_not_a_default():
    for config in ({}, {"SECRET_KEY": None, "PIN_KEY": None}, {"SECRET_KEY": "short"}):
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            PinKeyring.from_config(config)


def test_pin_key_makes_the_pins_independent_of_the_secret_key():
    stored = from_config(SECRET_KEY=SECRET, PIN_KEY=KEY.decode()).hash(CUSTOMER, PIN)
    assert from_config(SECRET_KEY="another-secret-key-0123456789abcdef-xyz", PIN_KEY=KEY.decode()).verify(
        CUSTOMER, stored, PIN) == pins.PinVerification(True)


def test_a_changed_secret_key_loses_derived_pins_unless_the_old_one_is_listed():
    stored = from_config(SECRET_KEY=SECRET).hash(CUSTOMER, PIN)
    new_secret = "the-next-secret-key-0123456789abcdef-xyz"
    assert from_config(SECRET_KEY=new_secret).verify(CUSTOMER, stored, PIN).problem == UNKNOWN_KEY
    result = from_config(SECRET_KEY=new_secret, PIN_KEYS_OLD=[SECRET]).verify(CUSTOMER, stored, PIN)
    assert result.matches and result.rehashed.split("$")[1] == key_id(derive_key(new_secret.encode()))


def test_setting_pin_key_later_needs_the_secret_key_listed_while_pins_move_over():
    stored = from_config(SECRET_KEY=SECRET).hash(CUSTOMER, PIN)
    # PIN_KEY set: the key derived from SECRET_KEY is no longer accepted by itself...
    assert from_config(SECRET_KEY=SECRET, PIN_KEY=KEY.decode()).verify(CUSTOMER, stored, PIN).problem == UNKNOWN_KEY
    # ...only while it is listed as an old key.
    result = from_config(SECRET_KEY=SECRET, PIN_KEY=KEY.decode(), PIN_KEYS_OLD=[SECRET]).verify(CUSTOMER, stored, PIN)
    assert result.matches and result.rehashed.split("$")[1] == key_id(KEY)


def test_old_keys_given_as_the_keys_themselves():
    stored = from_config(SECRET_KEY=SECRET, PIN_KEY=OTHER_KEY.decode()).hash(CUSTOMER, PIN)
    result = from_config(SECRET_KEY=SECRET, PIN_KEY=KEY.decode(), PIN_KEYS_OLD=[OTHER_KEY.decode()]).verify(
        CUSTOMER, stored, PIN)
    assert result.matches and result.rehashed.split("$")[1] == key_id(KEY)


# --- Argon2 hashes of earlier versions ----------------------------------------------------


def test_a_legacy_argon2_pin_is_accepted_and_made_again_with_the_current_key(legacy):
    stored = legacy.hash(PIN)
    assert stored.startswith("$argon2id$")
    hasher = make(legacy=legacy)
    result = hasher.verify(CUSTOMER, stored, PIN)
    assert result.matches and STORED.match(result.rehashed)
    assert result.rehashed.split("$")[1] == key_id(KEY)
    assert hasher.verify(CUSTOMER, result.rehashed, PIN) == pins.PinVerification(True)


def test_a_wrong_pin_against_a_legacy_hash_is_just_wrong(legacy):
    assert make(legacy=legacy).verify(CUSTOMER, legacy.hash(PIN), "000000") == pins.PinVerification(False)


@pytest.mark.parametrize("stored", ["$argon2id$", "$argon2id$v=19$m=8192,t=1,p=1$garbage"])
def test_a_broken_legacy_hash_does_not_match_or_raise(legacy, stored):
    assert make(legacy=legacy).verify(CUSTOMER, stored, PIN) == pins.PinVerification(False)


def test_without_a_legacy_checker_an_argon2_value_fails_closed(legacy):
    assert make().verify(CUSTOMER, legacy.hash(PIN), PIN).problem == MALFORMED


def test_the_legacy_checker_is_only_built_when_an_argon2_value_is_met():
    built = []
    hasher = PinHasher(PinKeyring(KEY), legacy=lambda: built.append(1) or pytest.fail("not needed"))
    assert hasher.verify(CUSTOMER, hasher.hash(CUSTOMER, PIN), PIN).matches
    assert built == []


def test_the_key_in_use_is_logged_by_its_id_never_itself(caplog):
    with caplog.at_level(logging.INFO, logger="canopy.identity"):
        PinKeyring.from_config({"SECRET_KEY": SECRET, "PIN_KEY": KEY.decode(), "PIN_KEYS_OLD": [OTHER_KEY.decode()]})
        PinKeyring.from_config({"SECRET_KEY": SECRET})
    first, second = (record.getMessage() for record in caplog.records)
    assert key_id(KEY) in first and "PIN_KEY" in first and "1 old keys" in first
    assert key_id(derive_key(SECRET.encode())) in second and "derived from SECRET_KEY" in second
    for secret in (KEY.decode(), OTHER_KEY.decode(), SECRET):
        assert secret not in caplog.text

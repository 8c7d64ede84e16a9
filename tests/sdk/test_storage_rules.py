"""canopy_sdk.storage_rules: the key, value, ttl and limit rules every ctx.storage follows."""

from __future__ import annotations

import datetime
import math

import pytest

from canopy_sdk import InvalidKey, InvalidValue, StorageError, ValueTooLarge
from canopy_sdk import storage_rules as rules

# -- keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "A1", "user:42", "bills/2024-05", "x.y_z-1", "a/", ":meta", "a" * rules.MAX_KEY_LENGTH])
def test_valid_keys_are_returned(key):
    assert rules.check_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("a" * (rules.MAX_KEY_LENGTH + 1), f"is {rules.MAX_KEY_LENGTH + 1} characters; the limit is {rules.MAX_KEY_LENGTH}"),
        ("/bills", "must not start with '/'"),
        ("a b", "may hold only"),
        ("a\n", "may hold only"),
        ("a\x00", "may hold only"),
        ("café", "may hold only"),
        ("账单", "may hold only"),
        ("a\\b", "may hold only"),
        ("a*", "may hold only"),
    ],
)
def test_bad_keys_are_refused(key, message):
    with pytest.raises(InvalidKey, match=message):
        rules.check_key(key)


@pytest.mark.parametrize("key", [None, 1, b"a", ["a"], 1.5])
def test_keys_must_be_strings(key):
    with pytest.raises(InvalidKey, match=f"storage keys are strings, got {type(key).__name__}"):
        rules.check_key(key)


def test_invalid_key_is_a_storage_error():
    assert issubclass(InvalidKey, StorageError)


def test_empty_prefix_lists_everything_but_other_prefixes_follow_key_rules():
    assert rules.check_prefix("") == ""
    assert rules.check_prefix("bills/") == "bills/"
    for prefix in ("/", None, "a b"):
        with pytest.raises(InvalidKey):
            rules.check_prefix(prefix)


# -- values ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, 0, -3, 1.5, "", "账单", [1, "a", None], {"a": {"b": [1, 2]}}])
def test_json_values_round_trip(value):
    assert rules.decode_value(rules.encode_value(value)) == value


def test_encoding_is_compact_and_keeps_unicode():
    assert rules.encode_value({"a": [1, 2], "b": "账"}) == '{"a":[1,2],"b":"账"}'


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", {("a",): 1}, [1, {2}], {"when": datetime.date(2024, 1, 1)}])
def test_values_that_are_not_json_are_refused(value):
    with pytest.raises(InvalidValue, match="must be JSON-able"):
        rules.encode_value(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan], {"x": math.inf}])
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(InvalidValue):
        rules.encode_value(value)


def test_circular_and_deeply_nested_values_are_refused_as_invalid_values():
    circular: list = []
    circular.append(circular)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]

    with pytest.raises(InvalidValue):
        rules.encode_value(circular)
    with pytest.raises(InvalidValue):
        rules.encode_value(deep)


def test_value_size_limit_in_ascii():
    just_fits = "a" * (rules.MAX_VALUE_BYTES - 2)  # JSON adds the two quotes

    assert len(rules.encode_value(just_fits).encode("utf-8")) == rules.MAX_VALUE_BYTES
    with pytest.raises(ValueTooLarge, match=f"is {rules.MAX_VALUE_BYTES + 1} bytes; the limit is {rules.MAX_VALUE_BYTES}"):
        rules.encode_value(just_fits + "a")


def test_value_size_counts_utf8_bytes_not_characters():
    # '汉' is 3 bytes in UTF-8: 21,844 of them encode to 65,534 bytes, 21,845 to 65,537.
    fits = "汉" * ((rules.MAX_VALUE_BYTES - 2) // 3)
    too_big = fits + "汉"

    assert len(rules.encode_value(fits).encode("utf-8")) <= rules.MAX_VALUE_BYTES
    assert len(too_big) < rules.MAX_VALUE_BYTES  # but in characters it looks small
    with pytest.raises(ValueTooLarge):
        rules.encode_value(too_big)


def test_value_errors_are_storage_errors_of_distinct_kinds():
    assert issubclass(ValueTooLarge, StorageError) and issubclass(InvalidValue, StorageError)
    assert not issubclass(ValueTooLarge, InvalidValue)


# -- ttl --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [(None, None), (1, 1.0), (1.5, 1.5), (3600, 3600.0), (rules.MAX_TTL_SECONDS, float(rules.MAX_TTL_SECONDS))],
)
def test_ttl_in_range(ttl, expected):
    result = rules.check_ttl(ttl)

    assert result == expected
    assert result is None or type(result) is float


@pytest.mark.parametrize("ttl", [0, 0.999, -1, rules.MAX_TTL_SECONDS + 1, rules.MAX_TTL_SECONDS + 0.5, math.inf, -math.inf])
def test_ttl_out_of_range(ttl):
    with pytest.raises(InvalidValue, match="ttl must be between"):
        rules.check_ttl(ttl)


@pytest.mark.parametrize("ttl", [True, False, "60", math.nan, [60], b"60"])
def test_ttl_must_be_a_number_and_bool_is_not_one(ttl):
    with pytest.raises(InvalidValue, match="ttl must be a number of seconds"):
        rules.check_ttl(ttl)


# -- listing limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 100, rules.MAX_LIST_LIMIT])
def test_limit_in_range(limit):
    assert rules.check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, rules.MAX_LIST_LIMIT + 1, True, False, 5.0, "10", None])
def test_limit_out_of_range_or_not_an_int(limit):
    with pytest.raises(InvalidValue, match="limit must be an integer from 1 to"):
        rules.check_limit(limit)

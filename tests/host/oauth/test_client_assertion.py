"""host.oauth.client_assertion: private_key_jwt as RFC 7523 and FAPI 2.0 want it."""

from __future__ import annotations

import pytest

from host.oauth.client_assertion import ASSERTION_TYPE, read_client_id, verify_client_assertion
from host.oauth.errors import InvalidClient
from host.oauth.replay import MemoryReplayCache

ISSUER = "https://bank.example"
CLIENT = "sh.deals"
NOW = 1_800_000_000


def check(assertion, key, *, now=NOW, replay=None, jwks=None, issuer=ISSUER, client_id=CLIENT):
    return verify_client_assertion(
        assertion, client_id=client_id, jwks=jwks if jwks is not None else key.jwks(), issuer=issuer,
        replay=replay if replay is not None else MemoryReplayCache(clock=lambda: now), now=now,
    )


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_a_good_assertion_authenticates(make_key, alg):
    key = make_key(alg)
    result = check(key.assertion(CLIENT, ISSUER, now=NOW), key)
    assert result.client_id == CLIENT and result.kid == key.kid and result.exp == NOW + 60


def test_aud_may_be_a_one_element_list(partner_key):
    check(partner_key.assertion(CLIENT, [ISSUER], now=NOW), partner_key)


@pytest.mark.parametrize(
    "audience",
    ["https://bank.example/oauth/token", "https://other.example", [ISSUER, "https://other.example"], None, 7],
)
def test_wrong_aud_is_refused(partner_key, audience):
    with pytest.raises(InvalidClient, match="aud of the client assertion must be the issuer identifier") as caught:
        check(partner_key.assertion(CLIENT, audience, now=NOW), partner_key)
    assert caught.value.error == "invalid_client"


def test_alg_none_is_refused(partner_key, jwt_tools):
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": NOW + 60, "jti": "a"}
    with pytest.raises(InvalidClient, match="alg 'none' is not allowed"):
        check(jwt_tools.unsigned({"kid": partner_key.kid}, claims), partner_key)


def test_hs256_is_refused_even_with_a_symmetric_key_registered(partner_key, jwt_tools):
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": NOW + 60, "jti": "a"}
    jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "s"}]}
    with pytest.raises(InvalidClient, match="alg 'HS256' is not allowed"):
        check(jwt_tools.hs256(b"secretsecretsecretsecretsecret12", {"kid": "s"}, claims), partner_key, jwks=jwks)


def test_a_key_the_client_did_not_register_is_refused(partner_key, make_key):
    stranger = make_key("ES256", kid=partner_key.kid)
    with pytest.raises(InvalidClient, match="signature does not verify"):
        check(stranger.assertion(CLIENT, ISSUER, now=NOW), partner_key)
    with pytest.raises(InvalidClient, match="no registered key"):
        check(make_key("ES256").assertion(CLIENT, ISSUER, now=NOW), partner_key)
    # A key embedded in the header is never trusted.
    with pytest.raises(InvalidClient, match="registered JWKS"):
        check(stranger.assertion(CLIENT, ISSUER, now=NOW, header={"jwk": stranger.public_jwk()}), partner_key)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "other.plugin"}, "iss and sub"),
        ({"sub": "other.plugin"}, "iss and sub"),
        ({"exp": None}, "needs exp"),
        ({"exp": "soon"}, "needs exp"),
        ({"exp": NOW - 6}, "has expired"),
        ({"exp": NOW + 301}, "lives too long"),
        ({"iat": NOW + 6}, "iat of the client assertion"),
        ({"nbf": NOW + 6}, "nbf of the client assertion"),
        ({"jti": None}, "needs a jti"),
        ({"jti": ""}, "needs a jti"),
        ({"jti": 12}, "needs a jti"),
    ],
)
def test_claim_problems(partner_key, claims, message):
    with pytest.raises(InvalidClient, match=message):
        check(partner_key.assertion(CLIENT, ISSUER, now=NOW, **claims), partner_key)


def test_a_replayed_assertion_is_refused(partner_key):
    replay = MemoryReplayCache(clock=lambda: NOW)
    assertion = partner_key.assertion(CLIENT, ISSUER, now=NOW)
    check(assertion, partner_key, replay=replay)
    with pytest.raises(InvalidClient, match="used before"):
        check(assertion, partner_key, replay=replay)


def test_a_key_listed_for_another_use_or_alg_is_not_used(partner_key):
    for change in ({"use": "enc"}, {"alg": "PS256"}):
        jwks = {"keys": [{**partner_key.public_jwk(), **change}]}
        with pytest.raises(InvalidClient, match="no registered key"):
            check(partner_key.assertion(CLIENT, ISSUER, now=NOW), partner_key, jwks=jwks)


def test_read_client_id(partner_key):
    assertion = partner_key.assertion(CLIENT, ISSUER, now=NOW)
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    assert read_client_id(form) == CLIENT
    assert read_client_id({**form, "client_id": CLIENT}) == CLIENT
    with pytest.raises(InvalidClient, match="does not match"):
        read_client_id({**form, "client_id": "other"})
    with pytest.raises(InvalidClient, match="private_key_jwt"):
        read_client_id({"client_id": CLIENT})
    with pytest.raises(InvalidClient, match="private_key_jwt"):
        read_client_id({**form, "client_assertion_type": "urn:other"})
    with pytest.raises(InvalidClient, match="client secrets are not accepted"):
        read_client_id({**form, "client_secret": "s"})
    with pytest.raises(InvalidClient, match="needs sub"):
        read_client_id({**form, "client_assertion": partner_key.assertion(CLIENT, ISSUER, sub=None)})
    with pytest.raises(InvalidClient, match="not acceptable"):
        read_client_id({**form, "client_assertion": "junk"})

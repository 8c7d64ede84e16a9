"""host.oauth.dpop: RFC 9449 proof checks, each failing the way it should."""

from __future__ import annotations

import time

import pytest

from host.oauth.dpop import DPoPNonces, access_token_hash, normalize_htu, verify_proof
from host.oauth.errors import InvalidDPoPProof, UseDPoPNonce
from host.oauth.replay import MemoryReplayCache

URL = "https://bank.example/oauth/token"
NOW = 1_800_000_000


def check(proof, *, method="POST", url=URL, now=NOW, replay=None, **kwargs):
    return verify_proof([proof] if isinstance(proof, str) else proof, method=method, url=url,
                        replay=replay if replay is not None else MemoryReplayCache(clock=lambda: now), now=now, **kwargs)


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_a_good_proof_gives_the_keys_thumbprint(make_key, alg):
    key = make_key(alg)
    result = check(key.proof("POST", URL, iat=NOW))
    assert result.jkt == key.jkt
    assert (result.htm, result.htu, result.iat) == ("POST", URL, NOW)


def test_htu_is_compared_without_query_and_fragment_and_normalised(partner_key):
    check(partner_key.proof("GET", "HTTPS://Bank.Example:443/api/v1/me?x=1#f", iat=NOW), method="GET",
          url="https://bank.example/api/v1/me?page=2")
    assert normalize_htu("http://h:80/a?b#c") == "http://h/a"
    assert normalize_htu("http://h:8000/a") == "http://h:8000/a"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "GET"}, "htm does not match"),
        ({"url": "https://bank.example/oauth/par"}, "htu does not match"),
        ({"url": "https://evil.example/oauth/token"}, "htu does not match"),
        ({"url": "http://bank.example/oauth/token"}, "htu does not match"),
        ({"now": NOW + 61}, "older than 60 seconds"),
        ({"now": NOW - 6}, "in the future"),
    ],
)
def test_a_proof_for_another_request_or_time_is_refused(partner_key, change, message):
    with pytest.raises(InvalidDPoPProof, match=message) as caught:
        check(partner_key.proof("POST", URL, iat=NOW), **change)
    assert caught.value.error == "invalid_dpop_proof"


def test_the_window_edges_are_accepted(partner_key):
    check(partner_key.proof("POST", URL, iat=NOW), now=NOW + 60)
    check(partner_key.proof("POST", URL, iat=NOW), now=NOW - 5)


def test_a_replayed_jti_is_refused(partner_key):
    replay = MemoryReplayCache(clock=lambda: NOW)
    proof = partner_key.proof("POST", URL, iat=NOW)
    check(proof, replay=replay)
    with pytest.raises(InvalidDPoPProof, match="used before"):
        check(proof, replay=replay)
    # The same jti under another key is another proof.
    check(type(partner_key)("ES256").proof("POST", URL, iat=NOW, jti="same"), replay=replay)
    check(partner_key.proof("POST", URL, iat=NOW, jti="same"), replay=replay)


def test_ath_binds_the_proof_to_the_access_token(partner_key):
    check(partner_key.proof("GET", URL, iat=NOW, access_token="tok-1"), method="GET", access_token="tok-1")
    with pytest.raises(InvalidDPoPProof, match="ath does not match"):
        check(partner_key.proof("GET", URL, iat=NOW, access_token="tok-1"), method="GET", access_token="tok-2")
    with pytest.raises(InvalidDPoPProof, match="ath does not match"):
        check(partner_key.proof("GET", URL, iat=NOW), method="GET", access_token="tok-1")
    assert access_token_hash("tok-1") != access_token_hash("tok-2")


def test_header_problems(partner_key, make_key, jwt_tools):
    public = partner_key.key.as_dict(private=False)
    claims = {"jti": "j", "htm": "POST", "htu": URL, "iat": NOW}
    cases = [
        (partner_key.sign({"typ": "JWT", "jwk": public}, claims), "typ must be dpop\\+jwt"),
        (partner_key.sign({"jwk": public}, claims), "typ must be dpop\\+jwt"),
        (partner_key.sign({"typ": "dpop+jwt"}, claims), "jwk header is not acceptable"),
        (partner_key.sign({"typ": "dpop+jwt", "jwk": partner_key.key.as_dict(private=True)}, claims), "private"),
        (partner_key.sign({"typ": "dpop+jwt", "jwk": make_key("ES256").key.as_dict(private=False)}, claims),
         "signature does not verify"),
        (partner_key.sign({"typ": "dpop+jwt", "jwk": make_key("PS256").key.as_dict(private=False)}, claims),
         "not a key for ES256"),
        (jwt_tools.unsigned({"typ": "dpop+jwt", "jwk": public}, claims), "alg 'none' is not allowed"),
        (jwt_tools.hs256(b"k" * 32, {"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "azEyMw"}}, claims),
         "alg 'HS256' is not allowed"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("", "malformed"),
    ]
    for proof, message in cases:
        with pytest.raises(InvalidDPoPProof, match=message):
            check(proof)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"jti": None}, "needs a jti"),
        ({"jti": ""}, "needs a jti"),
        ({"jti": 7}, "needs a jti"),
        ({"jti": "x" * 129}, "needs a jti"),
        ({"iat": None}, "needs iat"),
        ({"iat": "1800000000"}, "needs iat"),
        ({"iat": True}, "needs iat"),
        ({"htm": None}, "htm does not match"),
        ({"htu": None}, "htu does not match"),
        ({"htu": 5}, "htu does not match"),
    ],
)
def test_claim_problems(partner_key, claims, message):
    base = {"jti": "j1", "htm": "POST", "htu": URL, "iat": NOW}
    base.update(claims)
    base = {k: v for k, v in base.items() if v is not None}
    proof = partner_key.sign({"typ": "dpop+jwt", "jwk": partner_key.key.as_dict(private=False)}, base)
    with pytest.raises(InvalidDPoPProof, match=message):
        check(proof)


def test_exactly_one_header(partner_key):
    with pytest.raises(InvalidDPoPProof, match="is required"):
        check([])
    proof = partner_key.proof("POST", URL, iat=NOW)
    with pytest.raises(InvalidDPoPProof, match="exactly one"):
        check([proof, proof])


def test_server_nonces(partner_key):
    nonces = DPoPNonces(b"s" * 32)
    with pytest.raises(UseDPoPNonce) as caught:
        check(partner_key.proof("POST", URL, iat=NOW), nonces=nonces)
    fresh = caught.value.nonce
    assert ("DPoP-Nonce", fresh) in caught.value.get_headers()
    assert caught.value.error == "use_dpop_nonce"
    check(partner_key.proof("POST", URL, iat=NOW, nonce=fresh), nonces=nonces)
    # The previous window's nonce still works; older ones and other servers' do not.
    check(partner_key.proof("POST", URL, iat=NOW + 300, nonce=fresh), nonces=nonces, now=NOW + 300)
    with pytest.raises(UseDPoPNonce, match="stale"):
        check(partner_key.proof("POST", URL, iat=NOW + 600, nonce=fresh), nonces=nonces, now=NOW + 600)
    other = DPoPNonces(b"t" * 32).current(NOW)
    with pytest.raises(UseDPoPNonce):
        check(partner_key.proof("POST", URL, iat=NOW, nonce=other), nonces=nonces)


def test_descriptions_never_break_on_odd_input(partner_key):
    proof = partner_key.sign({"typ": "dpop+jwt", "jwk": partner_key.key.as_dict(private=False)},
                             {"jti": "j", "htm": "POST", "htu": "https://bänk\"/\\", "iat": NOW})
    with pytest.raises(InvalidDPoPProof) as caught:
        check(proof)
    assert caught.value.description.isascii() and '"' not in caught.value.description


def test_real_clock_smoke(partner_key):
    now = int(time.time())
    assert check(partner_key.proof("POST", URL), now=now).jkt == partner_key.jkt

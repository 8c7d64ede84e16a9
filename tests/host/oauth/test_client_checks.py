"""host.oauth.clients' checks of keys and redirect URIs: wildcards, URI characters, loopback
http outside development, the size of a JWKS, and an ``alg`` that does not fit its key."""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from host.oauth import clients
from host.oauth.clients import ClientRegistrationError, check_jwks, check_redirect_uris


def jwk(key, kid="k", **members):
    data = key.as_dict(private=False)
    data.update(kid=kid, **members)
    return data


@pytest.mark.parametrize(("uri", "message"), [
    ("https://*.partner.example/cb", "wildcard"),
    ("https://partner.example/*", "wildcard"),
    ("https://partner.example/cb?x=*", "wildcard"),
    ('https://partner.example/"><script>', "URI characters"),
    ("https://partner.example/caf\u00e9", "URI characters"),
    ("https://partner.example/a{b}", "URI characters"),
    ("javascript:alert(1)", "with a host"),
])
def test_redirect_uris_must_be_exact_uris(uri, message):
    with pytest.raises(ClientRegistrationError) as caught:
        check_redirect_uris([uri])
    assert message in caught.value.errors["redirect_uris[0]"][0]


def test_loopback_http_only_when_allowed():
    loopback = ["http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9000/cb"]
    assert check_redirect_uris(loopback) == loopback  # the default keeps the API's and CLI's behaviour
    with pytest.raises(ClientRegistrationError) as caught:
        check_redirect_uris(loopback, loopback_http=False)
    assert sorted(caught.value.errors) == ["redirect_uris[0]", "redirect_uris[1]", "redirect_uris[2]"]
    assert check_redirect_uris(["https://localhost/cb", "https://partner.example/cb?a=1&b=%2F"],
                               loopback_http=False)


def test_an_alg_must_fit_its_key():
    ec, ed = ECKey.generate_key("P-256"), OKPKey.generate_key("Ed25519")
    assert check_jwks({"keys": [jwk(ec, "a", alg="ES256"), jwk(ed, "b", alg="EdDSA"), jwk(ec, "c")]})
    for key, alg in ((ec, "PS256"), (ec, "EdDSA"), (ed, "ES256")):
        with pytest.raises(ClientRegistrationError) as caught:
            check_jwks({"keys": [jwk(key, alg=alg)]})
        assert "does not fit" in caught.value.errors["jwks.keys[0]"][0]


def test_a_jwks_is_size_limited():
    key = jwk(ECKey.generate_key("P-256"), x5c=["A" * clients.MAX_JWKS_BYTES])
    with pytest.raises(ClientRegistrationError) as caught:
        check_jwks({"keys": [key]})
    assert "bytes" in caught.value.errors["jwks"][0]
    with pytest.raises(ClientRegistrationError):
        check_jwks({"keys": [float("nan")] * 2, "x": object()})


def test_rsa_keys_have_a_most_size(monkeypatch):
    monkeypatch.setattr(clients, "MAX_RSA_BITS", 2048)
    assert check_jwks({"keys": [jwk(RSAKey.generate_key(2048), alg="PS256")]})
    with pytest.raises(ClientRegistrationError) as caught:
        check_jwks({"keys": [jwk(RSAKey.generate_key(3072), alg="PS256")]})
    assert "at most 2048 bits" in caught.value.errors["jwks.keys[0]"][0]


def test_private_members_are_refused():
    private = ECKey.generate_key("P-256").as_dict(private=True)
    with pytest.raises(ClientRegistrationError) as caught:
        check_jwks({"keys": [{**private, "kid": "p"}]})
    assert "private" in caught.value.errors["jwks.keys[0]"][0]

"""The partner's side of the OAuth benchmark: a partner's back end (one ES256 key, DPoP proofs,
``private_key_jwt`` assertions, made with joserfc as a partner would make them) and a customer's
browser driven with ``http.client`` through PAR → sign-in → consent → code → token."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

from .serving import Call, send

REDIRECT_URI = "https://partner.example/callback"
CUSTOMER = ("13800000001", "canopy-demo-1")  # the demo's first customer
CUSTOMER_SCOPE = "profile.basic:read profile.phone:read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Partner:
    """A partner's back end: one ES256 key, its client id, and what it signs."""

    def __init__(self, client_id: str) -> None:
        from joserfc.jwk import ECKey

        self.client_id = client_id
        self.key = ECKey.generate_key("P-256")
        self.kid = uuid.uuid4().hex[:12]
        self.public = self.key.as_dict(private=False)

    def jwks(self) -> dict:
        return {"keys": [{**self.public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def _sign(self, header: dict, claims: dict) -> str:
        from joserfc import jwt

        return jwt.encode({"alg": "ES256", **header}, claims, self.key, algorithms=["ES256"])

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A DPoP proof for one request (RFC 9449 §4.2)."""
        claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        return self._sign({"typ": "dpop+jwt", "jwk": self.public}, claims)

    def auth(self, issuer: str) -> dict[str, str]:
        """``private_key_jwt`` form fields with a fresh assertion (RFC 7523)."""
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": issuer, "iat": now, "exp": now + 120,
                  "jti": uuid.uuid4().hex}
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": self._sign({"kid": self.kid}, claims)}

    def token_call(self, issuer: str, form: dict[str, str], path: str = "/oauth/token") -> Call:
        """A token request (form + fresh assertion + fresh proof for ``issuer`` + ``path``)."""
        body = urlencode({**form, **self.auth(issuer)}).encode()
        return Call("POST", path, {**FORM, "DPoP": self.proof("POST", issuer + path)}, body)

    def resource_call(self, issuer: str, path: str, access_token: str) -> Call:
        """A resource request with the token and a fresh proof for ``issuer`` + ``path``."""
        return Call("GET", path, {"Authorization": f"DPoP {access_token}",
                                  "DPoP": self.proof("GET", issuer + path, access_token)})


# -- the customer's side: a browser driven with http.client --------------------------------------


class Browser:
    """A customer's browser: cookies, forms and redirects by hand (http.client)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, object]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        body = None
        if form is not None:
            headers.update(FORM)
            body = urlencode(form).encode()
        status, content, response_headers = send(self.port, Call(method, path, headers, body), timeout=30)
        for value in (response_headers.get_all("Set-Cookie") or []) if response_headers else []:
            jar = SimpleCookie()
            jar.load(value)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return status, content.decode("utf-8", "replace"), response_headers

    @staticmethod
    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        if not found:
            raise RuntimeError("no CSRF field in the page")
        return found.group(1)


def customer_tokens(port: int, issuer: str, partner: Partner) -> dict:
    """PAR → sign-in → consent → code → token, over HTTP; the token response."""
    verifier = b64url(os.urandom(32))
    par = {"response_type": "code", "redirect_uri": REDIRECT_URI, "scope": CUSTOMER_SCOPE, "state": "bench",
           "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256"}
    status, body, _ = send(port, partner.token_call(issuer, par, "/oauth/par"))
    if status != 201:
        raise RuntimeError(f"PAR answered {status}: {body[:300]!r}")
    request_uri = json.loads(body)["request_uri"]

    browser = Browser(port)
    status, page, _ = browser.request("GET", "/signin")
    status, page, _ = browser.request("POST", "/signin", {"phone": CUSTOMER[0], "password": CUSTOMER[1],
                                                           "csrf_token": Browser.csrf(page)})
    if status != 303:
        raise RuntimeError(f"sign-in answered {status}")
    authorize = "/oauth/authorize?" + urlencode({"client_id": partner.client_id, "request_uri": request_uri})
    status, page, _ = browser.request("GET", authorize)
    if status != 200:
        raise RuntimeError(f"the consent page answered {status}: {page[:300]}")
    status, _, headers = browser.request("POST", authorize, {"decision": "approve", "csrf_token": Browser.csrf(page)})
    location = headers.get("Location", "") if headers else ""
    code = parse_qs(urlsplit(location).query).get("code", [""])[0]
    if status != 303 or not code:
        raise RuntimeError(f"the consent answered {status} {location[:200]}")

    exchange = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT_URI}
    return token_response(port, partner.token_call(issuer, exchange))


def token_response(port: int, call: Call) -> dict:
    status, body, _ = send(port, call)
    if status != 200:
        raise RuntimeError(f"the token endpoint answered {status}: {body[:300]!r}")
    return json.loads(body)

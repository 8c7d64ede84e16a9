"""Configuration: defaults, then the instance file, then ``CANOPY_*`` environment
variables, then the ``config`` mapping given to ``create_app`` (tests use that).

The instance file is ``<instance path>/canopy.toml`` with upper-case keys without the
prefix (``DATABASE_URL = "..."``). Secrets have no default: ``SECRET_KEY`` must come
from the environment or the instance file (``canopy demo`` writes a random one there).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

PREFIX = "CANOPY_"
INSTANCE_FILE = "canopy.toml"

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite in the instance folder
    "PLUGIN_PATHS": "plugins",
    "LOAD_ENTRY_POINTS": True,
    "SECRET_KEY": None,
    "DEFAULT_LOCALE": "zh-CN",
    "HEAD_OFFICE": "HQ",
    # Budgets in milliseconds for one plugin's call of each hook.
    "HOOK_BUDGET_MS": {
        "canopy_storefront_tiles": 250,
        "canopy_page": 1000,
        "canopy_api": 2000,
        "canopy_on_event": 2000,
        "canopy_search": 300,
    },
    # Calls of one plugin that may be running at once; more fail fast (a hung plugin
    # cannot take the whole pool).
    "PLUGIN_MAX_IN_FLIGHT": 8,
    "PLUGIN_POOL_SIZE": 32,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # A developer's own machine: changed plugin files update their registered version
    # instead of being refused (``make run`` turns it on). Never in production.
    "DEVELOPMENT": False,
    # Redis for rate limits across processes; None: each process counts for itself.
    "REDIS_URL": None,
    # Reverse proxies in front of the host whose X-Forwarded-For/-Proto to believe (0: none).
    # Client addresses (rate limits, audit) come from the closest untrusted hop.
    "TRUSTED_PROXIES": 0,
    # Where outbox events are delivered: "inline" at the end of the request that wrote them
    # (the embedded default), or "worker": requests only wake `canopy worker` (docs/operations.md).
    "EVENTS_DELIVERY": "inline",
    # Where a submitted version's automatic pre-review runs once the submit has committed:
    # "request" (the submitting request, which answers with the outcome) or "worker" (`canopy
    # worker`; the request answers "submitted" at once). docs/publishing.md.
    "PREREVIEW_RUNS": "request",
    "PAYMENTS_CURRENCIES": "CNY",  # comma-separated ISO 4217 codes intents may be created in
    # The session cookie: HTTPS only (browsers count 127.0.0.1 and localhost as secure), never
    # readable by scripts, not sent on cross-site subrequests, 30 minutes idle.
    "SESSION_COOKIE_NAME": "canopy_session",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 1800,
    # Argon2id cost (RFC 9106, low-memory profile).
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_KIB": 65536,
    "ARGON2_PARALLELISM": 4,
    # The payment PIN key (HMAC-SHA256, see host/identity/pins.py): no default; unset, it is
    # derived from SECRET_KEY. PIN_KEYS_OLD: earlier keys still accepted while rotating.
    "PIN_KEY": None,
    "PIN_KEYS_OLD": None,
    # OAuth: the issuer identifier is also the host's public base URL (DPoP htu, client
    # assertion aud, redirects). Production sets its https origin.
    "OAUTH_ISSUER": "http://127.0.0.1:8000",
    "OAUTH_ACCESS_TOKEN_SECONDS": 300,  # at most 600 (FAPI 2.0 grade: short-lived)
    "OAUTH_REFRESH_TOKEN_DAYS": 30,
    "OAUTH_CONSENT_DAYS": 365,
    "OAUTH_DPOP_NONCE": False,  # require server nonces in DPoP proofs at the token endpoint
    "MINIPROGRAM_SESSION_SECONDS": 1800,
    # Each mini-program's own origin ({plugin}: its id; {port}: the port of OAUTH_ISSUER). Development:
    # *.localhost resolves to loopback, so the same server answers. Production: a separate domain,
    # e.g. "https://{plugin}.mp.bank-apps.example" (docs/bridge.md, "Origins").
    "MINIPROGRAM_ORIGIN": "http://{plugin}.mp.localhost:{port}",
    # Partner plugins (docs/sandbox.md): "auto" runs them in the sandbox where isolation works
    # here (refused otherwise); "off" refuses them. Workers per plugin in each host process;
    # faults within the window (seconds) that disable a plugin; its resource limits over the
    # defaults (e.g. {"memory_bytes": 268435456}).
    "SANDBOX": "auto",
    "SANDBOX_WORKERS": 2,
    "SANDBOX_MAX_FAULTS": 3,
    "SANDBOX_FAULT_WINDOW": 3600,
    "SANDBOX_LIMITS": {},
    # Seconds before a crashed worker's first restart (doubling after each further fault), and
    # between a disabling process's looks at the registry for staff's re-enabling.
    "SANDBOX_BACKOFF": 1.0,
    "SANDBOX_ENABLE_CHECK": 5.0,
    # The automatic rollback of gray versions (docs/publishing.md): e.g. {"max_error_rate": 0.02,
    # "window_seconds": 900}; {"enabled": false} measures without rolling back.
    "RELEASE_AUTO_ROLLBACK": {},
}

_BOOLEAN = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


class ConfigError(RuntimeError):
    """The configuration is missing a value or holds a wrong one."""


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        try:
            return _BOOLEAN[raw.strip().lower()]
        except KeyError:
            raise ConfigError(f"{PREFIX}{key} must be true or false, got {raw!r}") from None
    if isinstance(default, float):
        try:
            number = float(raw)
        except ValueError:
            number = 0.0
        if not number > 0 or number == float("inf"):
            raise ConfigError(f"{PREFIX}{key} must be a positive number of seconds, got {raw!r}")
        return number
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{PREFIX}{key} must be an integer, got {raw!r}") from None
        if value < _least(key):  # sizes and limits: zero or less would break the host at its first request
            raise ConfigError(f"{PREFIX}{key} must be a positive integer, got {raw!r}")
        return value
    if isinstance(default, dict):
        # A JSON object of positive integers, e.g. {"canopy_page": 500}, over the defaults.
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()
        ):
            raise ConfigError(f"{PREFIX}{key} must be a JSON object of positive integers, got {raw!r}")
        return {**default, **value}
    return raw


#: Integer settings for which zero is meaningful; every other one must be at least 1.
_ZERO_ALLOWED = frozenset({"TRUSTED_PROXIES"})


def _least(key: str) -> int:
    return 0 if key in _ZERO_ALLOWED else 1


def _check_type(source: Path, key: str, value: Any) -> None:
    """Refuse an instance-file value of another type than its default (``LOAD_ENTRY_POINTS = "no"``)."""
    default = DEFAULTS.get(key)
    if default is None:
        return
    expected = bool if isinstance(default, bool) else type(default)
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"{source}: {key} must be a positive number, got {value!r}")
        return
    if expected is int and (isinstance(value, bool) or not isinstance(value, int) or value < _least(key)):
        raise ConfigError(f"{source}: {key} must be a positive integer, got {value!r}")
    if expected is not int and not isinstance(value, expected):
        raise ConfigError(f"{source}: {key} must be a {expected.__name__}, got {value!r}")


def instance_path(explicit: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return the instance folder: ``INSTANCE_PATH`` from ``explicit``, the environment, or ``./instance``."""
    environ = os.environ if environ is None else environ
    value = (explicit or {}).get("INSTANCE_PATH") or environ.get(PREFIX + "INSTANCE_PATH") or "instance"
    return Path(value).resolve()


def load_config(explicit: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the merged configuration."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {key: (dict(v) if isinstance(v, dict) else v) for key, v in DEFAULTS.items()}
    folder = instance_path(explicit, environ)
    config["INSTANCE_PATH"] = str(folder)
    file = folder / INSTANCE_FILE
    if file.is_file():
        try:
            values = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
        for key, value in values.items():
            _check_type(file, key, value)
        config.update(values)
    for name, raw in environ.items():
        if name.startswith(PREFIX) and name != PREFIX + "INSTANCE_PATH":
            key = name[len(PREFIX):]
            config[key] = _coerce(key, raw, DEFAULTS.get(key))
    config.update(explicit or {})
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{folder / 'canopy.db'}"
    return config


def one_of(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    """``config[key]`` as one of ``choices`` (case and surrounding spaces forgiven; the first
    choice when unset); :class:`ConfigError` naming the setting for anything else."""
    raw = config.get(key)
    value = choices[0] if raw is None else str(raw).strip().lower()
    if value not in choices:
        raise ConfigError(f"{key} must be {' or '.join(choices)}, got {raw!r}")
    return value


def plugin_paths(config: Mapping[str, Any]) -> list[Path]:
    """Return the plugin folders to scan, from ``PLUGIN_PATHS`` (a list, or a string
    separated by the OS path separator)."""
    value = config.get("PLUGIN_PATHS") or []
    if isinstance(value, str):
        value = [part for part in value.split(os.pathsep) if part]
    return [Path(part) for part in value]


def require_secret(config: Mapping[str, Any]) -> bytes:
    """Return ``SECRET_KEY`` as bytes, refusing a missing or short one."""
    secret = config.get("SECRET_KEY")
    if isinstance(secret, bytes):
        secret = secret.decode("utf-8", "surrogateescape")
    if not secret or len(str(secret)) < 32:
        raise ConfigError(
            "CANOPY_SECRET_KEY is missing or shorter than 32 characters: set it in the environment "
            "or the instance file (canopy demo writes a random one for development)"
        )
    return str(secret).encode("utf-8")


#: The shortest PIN key accepted, in characters (bytes for a key given as bytes), as for SECRET_KEY.
PIN_KEY_MIN_LENGTH = 32


def _pin_key_bytes(name: str, value: Any) -> bytes:
    # The message never quotes the value: it is a secret.
    if isinstance(value, bytes) and len(value) >= PIN_KEY_MIN_LENGTH:
        return value
    if isinstance(value, str) and len(value) >= PIN_KEY_MIN_LENGTH:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass
    raise ConfigError(f"{PREFIX}{name} must be a key of at least {PIN_KEY_MIN_LENGTH} characters")


def pin_key_settings(config: Mapping[str, Any]) -> tuple[bytes | None, tuple[bytes, ...]]:
    """Return ``PIN_KEY`` (None when unset: the PIN key is then derived from ``SECRET_KEY``)
    and ``PIN_KEYS_OLD`` as bytes. Refuses a short key, a ``PIN_KEY`` equal to ``SECRET_KEY``
    (it would not live apart) and old keys that are not a list of keys; the environment gives
    that list as a JSON array (``CANOPY_PIN_KEYS_OLD='["…", "…"]'``)."""
    raw = config.get("PIN_KEY")
    current = None if raw in (None, "", b"") else _pin_key_bytes("PIN_KEY", raw)
    secret = config.get("SECRET_KEY")
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    if current is not None and current == secret:
        raise ConfigError(f"{PREFIX}PIN_KEY must differ from {PREFIX}SECRET_KEY (leave it unset to derive one from it)")
    old = config.get("PIN_KEYS_OLD")
    if isinstance(old, str):  # from the environment
        try:
            old = json.loads(old) if old.strip() else []
        except ValueError:
            raise ConfigError(f"{PREFIX}PIN_KEYS_OLD must be a JSON array of keys") from None
    if old is None:
        old = []
    if not isinstance(old, (list, tuple)):
        raise ConfigError(f"{PREFIX}PIN_KEYS_OLD must be a list of keys")
    return current, tuple(_pin_key_bytes("PIN_KEYS_OLD", key) for key in old)

"""Configuration: defaults < instance file < CANOPY_* environment < explicit mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.config import DEFAULTS, INSTANCE_FILE, ConfigError, instance_path, load_config, plugin_paths, require_secret


def write_instance_file(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INSTANCE_FILE).write_text(text, encoding="utf-8")


def test_defaults_apply_when_nothing_else_is_given(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert config["DEFAULT_LOCALE"] == DEFAULTS["DEFAULT_LOCALE"] == "zh-CN"
    assert config["HEAD_OFFICE"] == "HQ"
    assert config["LOAD_ENTRY_POINTS"] is True
    assert config["SECRET_KEY"] is None
    assert config["HOOK_BUDGET_MS"] == DEFAULTS["HOOK_BUDGET_MS"]


def test_loaded_budgets_are_a_copy_of_the_defaults(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    config["HOOK_BUDGET_MS"]["canopy_page"] = 1
    assert DEFAULTS["HOOK_BUDGET_MS"]["canopy_page"] == 1000


def test_each_layer_overrides_the_one_below(tmp_path):
    write_instance_file(
        tmp_path,
        'DEFAULT_LOCALE = "en"\nHEAD_OFFICE = "FILE"\nPLUGIN_POOL_SIZE = 4\nSECRET_KEY = "from-the-file"\n',
    )
    environ = {"CANOPY_INSTANCE_PATH": str(tmp_path), "CANOPY_HEAD_OFFICE": "ENV", "CANOPY_PLUGIN_POOL_SIZE": "6"}
    config = load_config({"PLUGIN_POOL_SIZE": 9}, environ=environ)
    assert config["DEFAULT_LOCALE"] == "en"  # file over default
    assert config["SECRET_KEY"] == "from-the-file"  # file over default
    assert config["HEAD_OFFICE"] == "ENV"  # environment over file
    assert config["PLUGIN_POOL_SIZE"] == 9  # explicit over environment and file
    assert config["PLUGIN_MAX_IN_FLIGHT"] == DEFAULTS["PLUGIN_MAX_IN_FLIGHT"]  # nobody set it


def test_environment_values_are_coerced_to_the_default_type(tmp_path):
    environ = {
        "CANOPY_INSTANCE_PATH": str(tmp_path),
        "CANOPY_LOAD_ENTRY_POINTS": "off",
        "CANOPY_PLUGIN_MAX_IN_FLIGHT": " 3 ",
        "CANOPY_HOOK_BUDGET_MS": '{"canopy_page": 50}',
    }
    config = load_config(None, environ=environ)
    assert config["LOAD_ENTRY_POINTS"] is False
    assert config["PLUGIN_MAX_IN_FLIGHT"] == 3
    # a partial object overrides those hooks only
    assert config["HOOK_BUDGET_MS"] == {**DEFAULTS["HOOK_BUDGET_MS"], "canopy_page": 50}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CANOPY_LOAD_ENTRY_POINTS", "maybe"),
        ("CANOPY_PLUGIN_POOL_SIZE", "many"),
        ("CANOPY_PLUGIN_POOL_SIZE", "0"),
        ("CANOPY_MAX_CONTENT_LENGTH", "-1"),
        ("CANOPY_HOOK_BUDGET_MS", "250"),
        ("CANOPY_HOOK_BUDGET_MS", '{"canopy_page": "fast"}'),
        ("CANOPY_HOOK_BUDGET_MS", '{"canopy_page": 0}'),
    ],
)
def test_a_bad_environment_value_is_a_config_error_naming_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"CANOPY_INSTANCE_PATH": str(tmp_path), name: value})
    assert name in str(caught.value)
    assert repr(value) in str(caught.value)


def test_a_bad_environment_value_stops_create_app(tmp_path, monkeypatch):
    from host import create_app

    monkeypatch.setenv("CANOPY_LOAD_ENTRY_POINTS", "maybe")
    with pytest.raises(ConfigError, match="CANOPY_LOAD_ENTRY_POINTS"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_a_broken_instance_file_is_a_config_error_naming_the_file(tmp_path):
    write_instance_file(tmp_path, "SECRET_KEY = \n")
    with pytest.raises(ConfigError) as caught:
        load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert str(tmp_path / INSTANCE_FILE) in str(caught.value)


def test_the_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    config = load_config(None, environ={"CANOPY_INSTANCE_PATH": str(tmp_path / "inst")})
    assert config["INSTANCE_PATH"] == str((tmp_path / "inst").resolve())
    assert config["DATABASE_URL"] == f"sqlite:///{(tmp_path / 'inst').resolve() / 'canopy.db'}"


def test_an_explicit_database_url_is_kept(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "postgresql://db/x"}, environ={})
    assert config["DATABASE_URL"] == "postgresql://db/x"


def test_instance_path_precedence(tmp_path):
    environ = {"CANOPY_INSTANCE_PATH": str(tmp_path / "env")}
    assert instance_path({"INSTANCE_PATH": str(tmp_path / "explicit")}, environ) == (tmp_path / "explicit").resolve()
    assert instance_path(None, environ) == (tmp_path / "env").resolve()
    assert instance_path(None, {}) == Path("instance").resolve()


def test_the_instance_path_setting_is_the_resolved_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={"CANOPY_INSTANCE_PATH": "relative"})
    assert config["INSTANCE_PATH"] == str(tmp_path.resolve() / "relative")


def test_plugin_paths_accepts_a_list_or_an_os_separated_string(tmp_path):
    import os

    assert plugin_paths({"PLUGIN_PATHS": ["a", "b"]}) == [Path("a"), Path("b")]
    assert plugin_paths({"PLUGIN_PATHS": f"a{os.pathsep}{os.pathsep}b"}) == [Path("a"), Path("b")]
    assert plugin_paths({"PLUGIN_PATHS": None}) == []


@pytest.mark.parametrize("secret", [None, "", "x" * 31])
def test_require_secret_refuses_missing_or_short_secrets(secret):
    with pytest.raises(ConfigError, match="CANOPY_SECRET_KEY"):
        require_secret({"SECRET_KEY": secret})


def test_require_secret_refuses_an_absent_key():
    with pytest.raises(ConfigError):
        require_secret({})


def test_require_secret_returns_a_long_enough_secret_as_bytes():
    assert require_secret({"SECRET_KEY": "密" * 32}) == ("密" * 32).encode("utf-8")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('LOAD_ENTRY_POINTS = "no"', "LOAD_ENTRY_POINTS"),
        ("PLUGIN_POOL_SIZE = 0", "PLUGIN_POOL_SIZE"),
        ('PLUGIN_POOL_SIZE = "8"', "PLUGIN_POOL_SIZE"),
        ("PLUGIN_MAX_IN_FLIGHT = true", "PLUGIN_MAX_IN_FLIGHT"),
        ("HOOK_BUDGET_MS = 5", "HOOK_BUDGET_MS"),
        ("DEVELOPMENT = 1", "DEVELOPMENT"),
    ],
)
def test_instance_file_values_of_the_wrong_type_are_refused(tmp_path, line, key):
    write_instance_file(tmp_path, line + "\n")
    with pytest.raises(ConfigError, match=key):
        load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})


def test_development_mode_is_off_unless_asked_for(tmp_path):
    assert load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})["DEVELOPMENT"] is False
    environ = {"CANOPY_DEVELOPMENT": "true"}
    assert load_config({"INSTANCE_PATH": str(tmp_path)}, environ=environ)["DEVELOPMENT"] is True


def test_a_boolean_from_the_environment_is_a_boolean(tmp_path):
    environ = {"CANOPY_SESSION_COOKIE_SECURE": "false"}
    assert load_config({"INSTANCE_PATH": str(tmp_path)}, environ=environ)["SESSION_COOKIE_SECURE"] is False
    assert load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})["SESSION_COOKIE_SECURE"] is True


def test_the_session_cookie_policy_reaches_the_response(demo_app):
    from host.demo import CUSTOMERS

    phone, password = CUSTOMERS[0][:2]
    client = demo_app.test_client()
    client.get("/signin")
    token = client.get_cookie("canopy_session")
    assert token is not None  # the CSRF token lives in the session
    with client.session_transaction() as session:
        csrf = session["csrf_token"]
    response = client.post("/signin", data={"phone": phone, "password": password, "csrf_token": csrf})
    assert response.status_code == 303
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("canopy_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # a permanent session of PERMANENT_SESSION_LIFETIME


def test_trusted_proxies_decide_the_client_address(app_factory):
    direct = app_factory().test_client()
    proxied = app_factory(TRUSTED_PROXIES=1).test_client()
    headers = {"X-Forwarded-For": "203.0.113.9"}
    for client in (direct, proxied):
        client.application.add_url_rule("/whoami", "whoami", lambda: __import__("flask").request.remote_addr)
    assert direct.get("/whoami", headers=headers).get_data(as_text=True) == "127.0.0.1"
    assert proxied.get("/whoami", headers=headers).get_data(as_text=True) == "203.0.113.9"


def test_zero_is_allowed_only_where_it_means_something(tmp_path):
    assert load_config({"INSTANCE_PATH": str(tmp_path)}, environ={"CANOPY_TRUSTED_PROXIES": "0"})["TRUSTED_PROXIES"] == 0
    with pytest.raises(ConfigError, match="PLUGIN_POOL_SIZE"):
        load_config({"INSTANCE_PATH": str(tmp_path)}, environ={"CANOPY_PLUGIN_POOL_SIZE": "0"})


# --- the payment PIN key ------------------------------------------------------------------

PIN_KEY = "a-payment-pin-key-for-the-tests-0123456789"
OLD_PIN_KEY = "an-older-payment-pin-key-for-tests-0123456789"


def pin_keys(config):
    from host.config import pin_key_settings

    return pin_key_settings(config)


def test_the_pin_key_has_no_default(tmp_path):
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert (config["PIN_KEY"], config["PIN_KEYS_OLD"]) == (None, None)
    assert pin_keys(config) == (None, ())  # derived from SECRET_KEY, never a built-in value


def test_the_pin_keys_come_from_the_environment_with_old_keys_as_a_json_array(tmp_path):
    environ = {"CANOPY_PIN_KEY": PIN_KEY, "CANOPY_PIN_KEYS_OLD": f'["{OLD_PIN_KEY}"]'}
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ=environ)
    assert pin_keys(config) == (PIN_KEY.encode(), (OLD_PIN_KEY.encode(),))


def test_the_pin_keys_come_from_the_instance_file(tmp_path):
    write_instance_file(tmp_path, f'PIN_KEY = "{PIN_KEY}"\nPIN_KEYS_OLD = ["{OLD_PIN_KEY}"]\n')
    config = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert pin_keys(config) == (PIN_KEY.encode(), (OLD_PIN_KEY.encode(),))


def test_an_empty_pin_key_is_unset():
    assert pin_keys({"PIN_KEY": "", "PIN_KEYS_OLD": ""}) == (None, ())


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"PIN_KEY": "x" * 31}, "CANOPY_PIN_KEY"),
        ({"PIN_KEY": b"x" * 31}, "CANOPY_PIN_KEY"),
        ({"PIN_KEY": 12345678901234567890123456789012345}, "CANOPY_PIN_KEY"),
        ({"PIN_KEY": "\ud800" * 40}, "CANOPY_PIN_KEY"),
        ({"PIN_KEYS_OLD": ["x" * 31]}, "CANOPY_PIN_KEYS_OLD"),
        ({"PIN_KEYS_OLD": [PIN_KEY, None]}, "CANOPY_PIN_KEYS_OLD"),
        ({"PIN_KEYS_OLD": PIN_KEY}, "CANOPY_PIN_KEYS_OLD"),  # one key, not a list of them
        ({"PIN_KEYS_OLD": '{"key": "x"}'}, "CANOPY_PIN_KEYS_OLD"),
        ({"PIN_KEYS_OLD": {"key": PIN_KEY}}, "CANOPY_PIN_KEYS_OLD"),
        ({"PIN_KEYS_OLD": 7}, "CANOPY_PIN_KEYS_OLD"),
        ({"PIN_KEY": PIN_KEY, "SECRET_KEY": PIN_KEY}, "CANOPY_PIN_KEY"),
    ],
)
def test_a_wrong_pin_key_is_a_config_error_that_does_not_quote_it(config, name):
    with pytest.raises(ConfigError, match=name) as caught:
        pin_keys(config)
    for value in config.values():
        assert not isinstance(value, str) or len(value) < 8 or value not in str(caught.value)


def test_a_wrong_pin_key_stops_create_app(app_factory):
    with pytest.raises(ConfigError, match="CANOPY_PIN_KEY"):
        app_factory(PIN_KEY="too-short")
    with pytest.raises(ConfigError, match="CANOPY_PIN_KEYS_OLD"):
        app_factory(PIN_KEYS_OLD="not a json array")


def test_seconds_settings_take_positive_numbers_from_the_environment_and_the_file(tmp_path):
    assert load_config(environ={"CANOPY_SANDBOX_BACKOFF": "0.5"})["SANDBOX_BACKOFF"] == 0.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError, match="SANDBOX_BACKOFF"):
            load_config(environ={"CANOPY_SANDBOX_BACKOFF": bad})
    (tmp_path / "canopy.toml").write_text("SANDBOX_ENABLE_CHECK = 2\n")
    assert load_config(environ={"CANOPY_INSTANCE_PATH": str(tmp_path)})["SANDBOX_ENABLE_CHECK"] == 2
    (tmp_path / "canopy.toml").write_text('SANDBOX_ENABLE_CHECK = "2"\n')
    with pytest.raises(ConfigError, match="SANDBOX_ENABLE_CHECK"):
        load_config(environ={"CANOPY_INSTANCE_PATH": str(tmp_path)})

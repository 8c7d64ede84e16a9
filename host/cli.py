"""The ``canopy`` command (also ``flask --app host``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .db import get_database
from .runtime import get_runtime


def _sync(approve: bool = False):
    from .runtime.registry import sync_registry

    with get_database().transaction(write=True) as session:
        return sync_registry(
            session, get_runtime(), approve=approve, development=bool(current_app.config["DEVELOPMENT"])
        )


# -- db ----------------------------------------------------------------------

db_group = click.Group("db", help="Database schema.")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION and record the plugins found on disk."""
    from .migrations import upgrade

    upgrade(get_database().engine, revision)
    report = _sync()
    click.echo(f"database at {revision}; plugins registered: {len(report.added)} new, {len(report.refused)} refused")


# -- demo --------------------------------------------------------------------


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Seed the demo: branches, bundled mini-programs approved and installed (idempotent)."""
    from .demo import seed

    report = _sync(approve=True)
    with get_database().transaction(write=True) as session:
        added = seed(session)
    click.echo(
        f"demo ready: {added['branches']} branches, {added['installations']} installations and "
        f"{added['people']} people added, {added['funded accounts']} payment accounts funded; "
        f"{len(report.added)} plugin versions registered"
    )


@click.command("demo-sign-ins")
def demo_sign_ins() -> None:
    """Print the demo's sign-ins (development only)."""
    from .demo import sign_ins

    for line in sign_ins():
        click.echo(f"    {line}")


@click.command("init-instance")
@with_appcontext
def init_instance() -> None:
    """Create the instance folder with a random development SECRET_KEY (never for production)."""
    from .demo import ensure_secret

    wrote = ensure_secret(Path(current_app.instance_path))
    click.echo("wrote a development SECRET_KEY" if wrote else "instance already has a SECRET_KEY")


# -- plugins -----------------------------------------------------------------

plugins_group = click.Group("plugins", help="Mini-programs: list, validate, show, approve, enable.")


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def plugins_list(as_json: bool) -> None:
    """List every plugin found on disk, with its registry state."""
    from .runtime.registry import list_plugins

    with get_database().transaction() as session:
        registered = {
            (record.id, v.version): (v.state, v.state_reason) for record in list_plugins(session) for v in record.versions
        }
    rows = []
    for loaded in get_runtime().known():
        manifest = loaded.manifest
        key = (manifest.id, manifest.version) if manifest else None
        rows.append(
            {
                "id": manifest.id if manifest else None,
                "version": manifest.version if manifest else None,
                "publisher": f"{manifest.publisher_kind}:{manifest.publisher_id}" if manifest else None,
                "loaded": loaded.ok,
                "state": registered.get(key, ("unregistered", ""))[0] if key else "invalid",
                "reason": registered.get(key, ("", ""))[1] if key else "",
                "problem": loaded.problem,
                "source": loaded.source,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        status = "loaded" if row["loaded"] else "NOT LOADED"
        click.echo(f"{row['id'] or '?':24} {row['version'] or '?':10} {row['publisher'] or '?':18} {row['state']:12} {status}")
        if row["problem"]:
            click.echo(f"    {row['problem']}")
        elif row["reason"]:  # why the registry does not serve it (e.g. disabled by the sandbox)
            click.echo(f"    {row['reason']}")


@plugins_group.command("validate")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def plugins_validate(path: Path) -> None:
    """Check the plugin folder PATH as the host would load it; exit 1 with every problem."""
    from .runtime.loader import inspect_folder

    loaded = inspect_folder(path)
    problems = list(loaded.problems) or ([("", loaded.problem)] if loaded.problem else [])
    if loaded.manifest is not None:
        problems += [
            (f"scopes[{i}]", f"unknown scope {name!r}")
            for i, name in enumerate(loaded.manifest.scopes)
            if name not in get_runtime().catalog
        ]
    else:
        scopes = _raw_scopes(path)
        problems += [
            (f"scopes[{i}]", f"unknown scope {name!r}")
            for i, name in enumerate(scopes)
            if isinstance(name, str) and name not in get_runtime().catalog
            and not any(field == f"scopes[{i}]" for field, _ in problems)
        ]
    if problems:
        click.echo(f"{path}: {len(problems)} problem(s)", err=True)
        for field, message in problems:
            click.echo(f"  {field or '(plugin)'}: {message}", err=True)
        sys.exit(1)
    where = "in the sandbox" if loaded.manifest.publisher_kind == "partner" else "in the host process"
    click.echo(f"{loaded.manifest.id} {loaded.manifest.version}: OK ({loaded.checksum}); runs {where}")


def _raw_scopes(folder: Path) -> list:
    """The ``scopes`` of a manifest that failed validation, read as plain TOML (or [])."""
    import tomllib

    try:
        scopes = tomllib.loads((folder / "plugin.toml").read_text(encoding="utf-8")).get("scopes", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return []
    return scopes if isinstance(scopes, list) else []


@plugins_group.command("show")
@click.argument("plugin_id")
@with_appcontext
def plugins_show(plugin_id: str) -> None:
    """Show one plugin's manifest, registry state and versions."""
    from .runtime.registry import UnknownPlugin, get_version

    runtime = get_runtime()
    loaded = next((p for p in runtime.known() if p.id == plugin_id), None)
    with get_database().transaction() as session:
        try:
            version = get_version(session, plugin_id)
            versions = [(v.version, v.state, v.state_reason, v.checksum) for v in version.plugin.versions]
            approved = list(version.approved_scopes)
        except UnknownPlugin:
            versions, approved = [], []
    if loaded is None and not versions:
        click.echo(f"no plugin {plugin_id!r} is loaded or registered", err=True)
        sys.exit(1)
    data = {
        "id": plugin_id,
        "loaded": bool(loaded and loaded.ok),
        "problem": loaded.problem if loaded else None,
        "source": loaded.source if loaded else None,
        "manifest": loaded.manifest.raw if loaded and loaded.manifest else None,
        "approved_scopes": approved,
        "versions": [{"version": v, "state": s, "reason": r, "checksum": c} for v, s, r, c in versions],
        "calls": {
            f"{hook}:{status}": n for (pid, hook, status), n in runtime.invoker.snapshot().items() if pid == plugin_id
        },
    }
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@plugins_group.command("approve")
@click.argument("plugin_id")
@click.option("--version", default=None, help="The version (default: newest registered).")
@with_appcontext
def plugins_approve(plugin_id: str, version: str | None) -> None:
    """Approve the scopes a plugin version's manifest requests."""
    from .runtime.registry import UnknownPlugin, approve_scopes

    try:
        with get_database().transaction(write=True) as session:
            found = approve_scopes(session, plugin_id, version)
            click.echo(f"{plugin_id} {found.version}: approved {', '.join(found.approved_scopes) or 'no scopes'}")
    except UnknownPlugin as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@plugins_group.command("enable")
@click.argument("plugin_id")
@click.option("--version", default=None, help="The version (default: newest registered).")
@with_appcontext
def plugins_enable(plugin_id: str, version: str | None) -> None:
    """Set a disabled plugin version (e.g. disabled by the sandbox for faults) back to active."""
    from . import audit
    from .runtime.registry import StateChangeRefused, UnknownPlugin, enable_version

    try:
        with get_database().transaction(write=True) as session:
            found = enable_version(session, plugin_id, version)
            audit.record("plugin.enabled", outcome=audit.SUCCESS, actor="cli", plugin_id=plugin_id,
                         detail={"version": found.version}, session=session)
            click.echo(f"{plugin_id} {found.version}: active")
    except (UnknownPlugin, StateChangeRefused) as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


# -- storage -----------------------------------------------------------------

storage_group = click.Group("storage", help="Plugin storage.")


@storage_group.command("purge")
@with_appcontext
def storage_purge() -> None:
    """Delete expired plugin storage keys."""
    from .runtime.storage import purge_expired

    click.echo(f"removed {purge_expired(get_database())} expired keys")


# -- serve -------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="gunicorn workers (default: 2 × cores + 1, at most 8).")
@with_appcontext
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the app with gunicorn (configuration in host/gunicorn_conf.py)."""
    report = _sync()
    if report.refused:
        click.echo(f"refused (files changed under a published version): {', '.join(report.refused)}", err=True)
    conf = Path(__file__).with_name("gunicorn_conf.py")
    args = [sys.executable, "-m", "gunicorn", "-c", str(conf), "--bind", f"{host}:{port}"]
    if workers:
        args += ["--workers", str(workers)]
    os.environ.setdefault("CANOPY_INSTANCE_PATH", current_app.instance_path)
    os.execv(sys.executable, args + ["host:create_app()"])


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli`` (so ``flask --app host`` has them too)."""
    from .oauth.cli import oauth_group
    from .payments.cli import payments_group
    from .worker import worker_command

    for command in (db_group, demo, demo_sign_ins, init_instance, plugins_group, storage_group, serve, oauth_group,
                    payments_group, worker_command):
        app.cli.add_command(command)


def main() -> None:
    """The ``canopy`` console script."""
    from . import create_app
    from .config import ConfigError

    try:
        FlaskGroup(create_app=create_app, add_default_commands=False, help="Canopy, the mini-program host.")(prog_name="canopy")
    except ConfigError as exc:  # a setting to fix, not a crash: say which, without a traceback
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)

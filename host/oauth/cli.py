"""``canopy oauth …``: head office's commands for OAuth clients and housekeeping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from .. import audit
from ..db import get_database

oauth_group = click.Group("oauth", help="OAuth clients and housekeeping.")


@oauth_group.command("register-client")
@click.argument("plugin_id")
@click.option("--jwks", "jwks_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A JSON file with the client's public JWK Set.")
@click.option("--redirect-uri", "redirect_uris", required=True, multiple=True, help="An exact redirect URI (repeatable).")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
              help="Allowed grant types (repeatable; default: all three).")
@with_appcontext
def register_client_command(plugin_id: str, jwks_file: Path, redirect_uris: tuple[str, ...], grant_types: tuple[str, ...]) -> None:
    """Register (or replace) the OAuth client of the registered plugin PLUGIN_ID."""
    from .clients import ClientRegistrationError, register_client

    try:
        jwks = json.loads(jwks_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        click.echo(f"{jwks_file}: cannot read a JSON JWK Set: {exc}", err=True)
        sys.exit(1)
    try:
        with get_database().transaction(write=True) as session:
            client = register_client(session, plugin_id, jwks=jwks, redirect_uris=list(redirect_uris),
                                     grant_types=list(grant_types) or None)
            summary = (len(client.jwks["keys"]), list(client.redirect_uris), list(client.grant_types))
    except ClientRegistrationError as exc:
        audit.record("oauth.client_registered", outcome=audit.FAILURE, actor="cli", plugin_id=plugin_id[:64],
                     detail={"errors": exc.errors})
        click.echo(f"{plugin_id}: not registered", err=True)
        for field, messages in exc.errors.items():
            click.echo(f"  {field}: {' '.join(messages)}", err=True)
        sys.exit(1)
    audit.record("oauth.client_registered", outcome=audit.SUCCESS, actor="cli", plugin_id=plugin_id,
                 detail={"jwks_size": summary[0], "redirect_uris": summary[1], "grant_types": summary[2]})
    click.echo(f"{plugin_id}: registered with {summary[0]} key(s), redirect URIs {', '.join(summary[1])}")


@oauth_group.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete expired replay-cache entries."""
    from .replay import purge_expired

    with get_database().transaction(write=True) as session:
        count = purge_expired(session)
    click.echo(f"removed {count} expired replay entries")

"""``canopy payments …``: the ledger's merchant statements and reconciliation, and housekeeping
(recording expiries, purging old idempotency keys) for when no ``canopy worker`` runs it."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click
from flask.cli import with_appcontext

from ..db import get_database
from . import sweep
from .idempotency import KEEP
from .invariants import report, snapshot
from .statement import BANK_TIME_ZONE, StatementError, UnknownMerchant, UnknownTimeZone, render_text, statement, time_zone

payments_group = click.Group("payments", help="The ledger: merchant statements and reconciliation; housekeeping.")


@payments_group.command("check")
@with_appcontext
def check_command() -> None:
    """Check the ledger's invariants and print them as JSON; exit 1 when any fails."""
    result = report(get_database())
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if not result["ok"]:
        failed = [name for name, outcome in result["invariants"].items() if not outcome["ok"]]
        click.echo(f"ledger invariants failing: {', '.join(failed)}", err=True)
        sys.exit(1)


def _known_zone(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        time_zone(value)
    except UnknownTimeZone as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@payments_group.command("statement")
@click.option("--merchant", required=True, metavar="OWNER",
              help="The merchant's settlement account owner, e.g. partner:CITYPOWER or branch:SH001.")
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The bank day, midnight to midnight in --tz.")
@click.option("--tz", default=BANK_TIME_ZONE, show_default=True, callback=_known_zone, metavar="ZONE",
              help="The IANA time zone of the bank day.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_appcontext
def statement_command(merchant: str, day: datetime, tz: str, output: str) -> None:
    """Print a merchant's statement for one bank day: opening balance, postings, totals, closing balance."""
    ctx = click.get_current_context()
    try:
        with snapshot(get_database()) as session:
            result = statement(session, merchant, day.date(), tz)
    except UnknownMerchant as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--merchant'") from None
    except UnknownTimeZone as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--tz'") from None
    except StatementError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--date'") from None
    if output == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result))


@payments_group.command("expire")
@click.option("--limit", default=sweep.BATCH, show_default=True, type=click.IntRange(min=1),
              help="Expire at most this many intents.")
@with_appcontext
def expire_command(limit: int) -> None:
    """Record the expiry (transition and event) of intents not confirmed in time; print how many."""
    expired = sweep.expire_due(get_database(), limit=limit)
    click.echo(f"expired {expired} payment intent{'' if expired == 1 else 's'}")


@payments_group.command("purge-keys")
@with_appcontext
def purge_keys_command() -> None:
    """Delete idempotency records past their keeping time; print how many."""
    removed = sweep.purge_keys(get_database())
    hours = int(KEEP.total_seconds() // 3600)
    click.echo(f"removed {removed} idempotency key{'' if removed == 1 else 's'} older than {hours} hours")

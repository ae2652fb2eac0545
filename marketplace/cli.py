"""Operator commands: flask create-admin, demo, serve, scheduler, payouts."""

from __future__ import annotations

import secrets
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from marketplace.extensions import db


@click.command("create-admin")
@with_appcontext
@click.argument("email")
def create_admin_command(email: str) -> None:
    """Make an admin (or a new key for one) and print the API key alone on the last line."""
    from marketplace.auth.service import create_admin

    admin, api_key = create_admin(email)
    click.echo(f"Admin {admin.id} <{admin.email}>. The key is shown once; keep it safe:", err=False)
    click.echo(api_key)


@click.command("demo")
@with_appcontext
@click.option("--reset", is_flag=True, help="Delete every row of the database first (asks unless --yes).")
@click.option("--yes", is_flag=True, help="With --reset: do not ask.")
def demo_command(reset: bool, yes: bool) -> None:
    """Fill an empty database with a brand, a funded live brief and a worker with work in every
    state; print their logins as shell lines (`eval "$(flask --app wsgi demo)"` sets $BRAND_KEY…)."""
    from marketplace.demo import require_schema, seed, wipe
    from marketplace.errors import Conflict

    try:
        if reset:
            require_schema()
            where = db.engine.url.render_as_string(hide_password=True)
            if not yes:
                click.confirm(f"Delete every row of {where}?", abort=True, err=True)
            wipe()
            click.echo(f"# Emptied {where}.")
        made = seed()
    except Conflict as exc:
        raise click.ClickException(exc.detail) from exc
    for line in made.shell():
        click.echo(line)


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--stripe-port", default=12111, show_default=True, type=int)
def serve_command(host: str, port: int, stripe_port: int) -> None:
    """Run the service for development: schema upgraded, jobs and schedule in-process without
    REDIS_URL, and, without STRIPE_API_KEY, the offline Stripe stand-in on --stripe-port."""
    from flask_migrate import upgrade

    from marketplace.jobs import run_periodic_forever
    from workers.schedule import PERIODIC

    app = current_app._get_current_object()
    upgrade(revision="heads")
    if not app.config.get("STRIPE_API_KEY"):
        from stripe_standin import StripeStandIn

        webhook_secret = "whsec_" + secrets.token_hex(16)
        connect_secret = "whsec_" + secrets.token_hex(16)
        standin = StripeStandIn(
            "127.0.0.1", stripe_port, webhook_url=_webhook_url(app, host, port),
            webhook_secret=webhook_secret,
            connect_webhook_url=_webhook_url(app, host, port, "stripe_webhooks.stripe_connect_webhook"),
            connect_webhook_secret=connect_secret,
        ).start()
        app.config.update(STRIPE_API_KEY="sk_test_standin", STRIPE_API_BASE=standin.url,
                          STRIPE_WEBHOOK_SECRET=webhook_secret, STRIPE_CONNECT_WEBHOOK_SECRET=connect_secret)
        click.echo(f"Stripe stand-in on {standin.url} (offline; succeed a payment with "
                   f"POST {standin.url}/_standin/payment_intents/<id>/succeed)")
    if not app.config.get("REDIS_URL"):
        stop = threading.Event()
        threading.Thread(target=run_periodic_forever, args=(app, PERIODIC, stop), daemon=True,
                         name="scheduler").start()
        click.echo("No REDIS_URL: background jobs and the schedule run in this process.")
    click.echo(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    # app.run() is a no-op under the flask command, so serve with werkzeug directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _webhook_url(app: Flask, host: str, port: int, endpoint: str = "stripe_webhooks.stripe_webhook") -> str:
    """Where the stand-in sends its events: a webhook route on the address being served."""
    return app.url_map.bind(f"{_reachable(host)}:{port}").build(endpoint, force_external=True)


@click.command("scheduler")
@with_appcontext
@click.option("--tick", default=1.0, show_default=True, help="Seconds between looks at the schedule.")
def scheduler_command(tick: float) -> None:
    """Enqueue the periodic jobs (claim expiry, validation sweep, auto-approval) on their intervals."""
    from marketplace.jobs import run_periodic_forever
    from workers.schedule import PERIODIC

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("The scheduler enqueues into Redis: set REDIS_URL (or use `flask serve`).")
    click.echo("Scheduling: " + ", ".join(f"{p.name} every {p.every_seconds}s" for p in PERIODIC))
    run_periodic_forever(app, PERIODIC, threading.Event(), tick)


@click.group("payouts")
def payouts_group() -> None:
    """Payout batches for operators: what POST /v1/payout-batches does, in the foreground."""


def _process_with_progress(batch_id: str) -> dict:
    import sys

    from marketplace.payouts import service

    start = service.progress(batch_id)
    total, done = start["progress"]["total"], start["progress"]["done"]
    if total and sys.stdout.isatty():
        with click.progressbar(length=total, label=f"Paying {batch_id}", show_pos=True) as bar:
            bar.update(done)
            return service.process_batch(batch_id, on_progress=bar.update)
    return service.process_batch(batch_id)


def _echo_summary(summary: dict) -> None:
    totals, progress = summary["totals"], summary["progress"]
    click.echo(f"Batch {summary['batch_id']}: {summary['status']}, {progress['done']}/{progress['total']} done; "
               f"paid {totals['paid_cents']}, failed {totals['failed_cents']}, reversed {totals['reversed_cents']}, "
               f"unsettled {totals['pending_cents']} cents")


@payouts_group.command("run")
@with_appcontext
@click.option("--min-amount-cents", default=1, show_default=True, type=click.IntRange(min=0))
@click.option("--currency", default="usd", show_default=True)
def payouts_run_command(min_amount_cents: int, currency: str) -> None:
    """Create a payout batch of every eligible worker and pay it now (a progress bar on a terminal)."""
    from marshmallow import ValidationError

    from marketplace.payouts import schemas, service

    try:  # the API's own rules for a batch
        wanted = schemas.BatchIn().load({"currency": currency.strip().lower(), "min_amount_cents": min_amount_cents})
    except ValidationError as exc:
        name, messages = next(iter(exc.messages.items()))
        raise click.BadParameter(messages[0], param_hint=f"--{name.replace('_', '-')}") from exc
    batch = service.create_batch(**wanted, created_by="cli")
    db.session.commit()
    click.echo(f"Batch {batch.id} created.")
    _echo_summary(_process_with_progress(batch.id))


@payouts_group.command("resume")
@with_appcontext
@click.argument("batch_id")
def payouts_resume_command(batch_id: str) -> None:
    """Finish a batch whose run stopped (crash, unknown outcomes): looks transfers up before resending."""
    from marketplace.errors import NotFound
    from marketplace.payouts import service

    try:
        service.get_batch(batch_id)
    except NotFound as exc:
        raise click.ClickException(exc.detail) from exc
    _echo_summary(_process_with_progress(batch_id))


@payouts_group.command("status")
@with_appcontext
@click.argument("batch_id")
def payouts_status_command(batch_id: str) -> None:
    """A batch's status, progress and totals, and its items that did not pay."""
    from marketplace.errors import NotFound
    from marketplace.payouts import service

    try:
        batch = service.present([service.get_batch(batch_id)], with_items=True)[0]
    except NotFound as exc:
        raise click.ClickException(exc.detail) from exc
    _echo_summary({**batch, "batch_id": batch["id"]})
    for item in batch["items"]:
        if item["status"] != "paid":
            click.echo(f"  {item['id']} {item['worker_id']} {item['amount_cents']} {item['status']}"
                       f"{': ' + item['failure_reason'] if item['failure_reason'] else ''}")


def register(app: Flask) -> None:
    for command in (create_admin_command, demo_command, serve_command, scheduler_command, payouts_group):
        app.cli.add_command(command)

"""Operator commands: flask create-admin, demo, serve, scheduler, payouts, payments, cases."""

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
def demo_command() -> None:
    """Fill an empty database with a brand, a funded live brief and a worker, and print their keys."""
    from marketplace.demo import seed

    for line in seed():
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
               f"unsettled {totals['pending_cents']}, held {totals['held_cents']} cents")


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
            held = f" until {item['available_on'].isoformat()}" if item["available_on"] else ""
            click.echo(f"  {item['id']} {item['worker_id']} {item['amount_cents']} {item['status']}{held}"
                       f"{': ' + item['failure_reason'] if item['failure_reason'] else ''}")


@click.group("payments")
def payments_group() -> None:
    """Our money at Stripe, for operators."""


@payments_group.command("reconcile")
@with_appcontext
def payments_reconcile_command() -> None:
    """Compare our ledger's cash at Stripe with Stripe's balance and balance transactions; print every
    difference (or that there are none); exit 1 when there are differences."""
    from marketplace.errors import ServiceUnavailable
    from marketplace.payments import gateway
    from marketplace.reconcile import NO_DIFFERENCES, differences

    try:
        found = differences()
    except (gateway.OutcomeUnknown, ServiceUnavailable) as exc:
        raise click.ClickException(f"Stripe cannot be read now: {exc}") from exc
    for line in found:
        click.echo(line)
    if found:
        click.echo(f"{len(found)} difference{'s' if len(found) != 1 else ''}.")
        raise SystemExit(1)
    click.echo(NO_DIFFERENCES)


@click.group("cases")
def cases_group() -> None:
    """Person-only cases (failed refunds, transfers unlike their items): what /v1/admin/cases does."""


def _echo_case(case: dict) -> None:
    money = f" {case['amount_cents']} {case['currency']}" if case["amount_cents"] is not None else ""
    click.echo(f"{case['id']} {case['kind']} {case['status']} {case['subject_id']}{money}: {case['detail']}")


def _case_action(action, case_id: str, **kwargs) -> None:
    from marketplace.errors import DomainError

    try:
        case = action(case_id, **kwargs)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.detail) from exc
    _echo_case(case)
    for done in case["actions"]:
        click.echo(f"  {done['created_at']:%Y-%m-%d %H:%M:%S} {done['actor']} {done['action']}"
                   f"{': ' + done['reason'] if done['reason'] else ''}")


@cases_group.command("list")
@with_appcontext
@click.option("--status", type=click.Choice(["open", "retrying", "resolved", "settled"]), default=None)
@click.option("--kind", type=click.Choice(["refund_failed", "transfer_mismatch"]), default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
def cases_list_command(status: str | None, kind: str | None, limit: int) -> None:
    """Cases, newest first."""
    from marketplace.cases import service

    rows, _ = service.list_cases(status=status, kind=kind, limit=limit, cursor=None)
    for case in rows:
        _echo_case(case)
    if not rows:
        click.echo("No cases.")


@cases_group.command("retry")
@with_appcontext
@click.argument("case_id")
@click.option("--by", "actor", required=True, help="Who retries it (recorded), e.g. an e-mail.")
@click.option("--reason", default=None)
def cases_retry_command(case_id: str, actor: str, reason: str | None) -> None:
    """Retry an open case (a new attempt of a failed refund; a transfer looked up again)."""
    from marketplace.cases import resolution

    _case_action(resolution.retry, case_id, actor=f"cli:{actor}"[:60], reason=reason)


@cases_group.command("settle")
@with_appcontext
@click.argument("case_id")
@click.option("--by", "actor", required=True, help="Who settled it (recorded), e.g. an e-mail.")
@click.option("--reason", required=True, help="Why and how it was settled.")
@click.option("--outcome", type=click.Choice(["paid", "failed"]), default=None,
              help="transfer_mismatch only: the payout item's outcome.")
def cases_settle_command(case_id: str, actor: str, reason: str, outcome: str | None) -> None:
    """Close an open case a person settled, with the reason."""
    from marketplace.cases import resolution

    if not reason.strip():
        raise click.BadParameter("a reason is required", param_hint="--reason")
    _case_action(resolution.settle, case_id, actor=f"cli:{actor}"[:60], reason=reason, outcome=outcome)


def register(app: Flask) -> None:
    for command in (create_admin_command, demo_command, serve_command, scheduler_command, payouts_group,
                    payments_group, cases_group):
        app.cli.add_command(command)

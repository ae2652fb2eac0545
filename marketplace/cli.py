"""Operator commands: flask create-admin, demo, serve, scheduler, payouts, payments, cases."""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

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
@click.option("--port", default=5000, show_default=True, type=int, help="The service's port.")
@click.option("--stripe-port", default=12111, show_default=True, type=int,
              help="The offline Stripe stand-in's port (without STRIPE_API_KEY).")
def serve_command(host: str, port: int, stripe_port: int) -> None:
    """Run the service for development: schema upgraded, jobs and schedule in-process without
    REDIS_URL, and, without STRIPE_API_KEY, the offline Stripe stand-in on --stripe-port."""
    from flask_migrate import upgrade

    from marketplace.jobs import run_periodic_forever
    from workers.schedule import PERIODIC

    app = current_app._get_current_object()
    standin_wanted = not app.config.get("STRIPE_API_KEY")
    _refuse_busy(host, port, "--port")  # before anything starts, so nothing is left half up
    if standin_wanted:
        _refuse_busy("127.0.0.1", stripe_port, "--stripe-port")
    upgrade(revision="heads")
    standin_file = None
    if standin_wanted:
        from stripe_standin import StripeStandIn

        webhook_secret = "whsec_" + secrets.token_hex(16)
        connect_secret = "whsec_" + secrets.token_hex(16)
        standin = StripeStandIn(
            "127.0.0.1", stripe_port, webhook_url=_webhook_url(app, host, port),
            webhook_secret=webhook_secret,
            connect_webhook_url=_webhook_url(app, host, port, "stripe_webhooks.stripe_connect_webhook"),
            connect_webhook_secret=connect_secret,
        )
        try:
            standin.start()
        except OSError as exc:
            raise click.ClickException(_busy_message(stripe_port, "--stripe-port", exc)) from exc
        app.config.update(STRIPE_API_KEY="sk_test_standin", STRIPE_API_BASE=standin.url,
                          STRIPE_WEBHOOK_SECRET=webhook_secret, STRIPE_CONNECT_WEBHOOK_SECRET=connect_secret)
        standin_file = write_standin_file(app)
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

    # A terminated server (make run's Ctrl-C or a kill) still removes its stand-in file below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    except OSError as exc:  # taken between the look above and now
        raise click.ClickException(_busy_message(port, "--port", exc)) from exc
    finally:
        if standin_file is not None:
            standin_file.unlink(missing_ok=True)


def _busy_message(port: int, option: str, exc: OSError | None = None) -> str:
    if exc is not None and exc.errno not in (errno.EADDRINUSE, errno.EACCES):
        return f"cannot listen on port {port}: {exc.strerror or exc}"
    return f"port {port} is in use; pass {option} {port + 1} (or another free port), or stop what listens there"


def _refuse_busy(host: str, port: int, option: str) -> None:
    """A clear refusal for a port someone else listens on (werkzeug's own is a traceback)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}: {exc}") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(_busy_message(port, option, exc)) from exc


# Where `flask serve` tells the other commands (flask payouts run, in another shell) how to reach
# the Stripe stand-in it started, since they cannot see its in-process settings.
STANDIN_FILE = "stripe-standin.json"


def write_standin_file(app: Flask) -> Path:
    path = Path(app.instance_path) / STANDIN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"STRIPE_API_KEY": app.config["STRIPE_API_KEY"],
                                "STRIPE_API_BASE": app.config["STRIPE_API_BASE"], "pid": os.getpid()}))
    path.chmod(0o600)
    return path


def use_the_servers_stripe(app: Flask) -> None:
    """Without STRIPE_API_KEY, take the Stripe settings of the stand-in a running `flask serve`
    (`make run`) wrote to the instance folder; then refuse unless Stripe answers, before the
    caller reserves anything."""
    from marketplace.errors import ServiceUnavailable
    from marketplace.payments import gateway

    path = Path(app.instance_path) / STANDIN_FILE
    if not app.config.get("STRIPE_API_KEY") and path.exists():
        try:
            saved = json.loads(path.read_text())
            app.config.update(STRIPE_API_KEY=saved["STRIPE_API_KEY"], STRIPE_API_BASE=saved["STRIPE_API_BASE"])
        except (OSError, ValueError, KeyError):
            pass
    if not app.config.get("STRIPE_API_KEY"):
        raise click.ClickException(
            "No Stripe to pay through: STRIPE_API_KEY is unset and no `make run` (flask serve) with its "
            f"Stripe stand-in is running here ({path} is missing). Start `make run` in another shell, "
            "or set STRIPE_API_KEY (and STRIPE_API_BASE). Nothing was reserved.")
    try:
        gateway.check_reachable()
    except (ServiceUnavailable, gateway.OutcomeUnknown) as exc:
        where = app.config.get("STRIPE_API_BASE") or "Stripe"
        raise click.ClickException(f"Stripe at {where} does not answer ({exc}); is `make run` still running? "
                                   "Nothing was reserved.") from exc


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
    click.echo("Scheduling: " + ", ".join(f"{p.name} every {p.interval(app.config)}s" if p.interval(app.config)
                                          else f"{p.name} off ({p.setting})" for p in PERIODIC))
    run_periodic_forever(app, PERIODIC, threading.Event(), tick)


@click.group("payouts")
def payouts_group() -> None:
    """Payout batches for operators: what POST /v1/payout-batches does, in the foreground."""


def _process_with_progress(batch_id: str) -> dict:
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
    use_the_servers_stripe(current_app._get_current_object())
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
    use_the_servers_stripe(current_app._get_current_object())
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

"""Operator commands: flask create-admin, demo, serve, scheduler."""

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

    app = current_app._get_current_object()
    upgrade(revision="heads")
    if not app.config.get("STRIPE_API_KEY"):
        from marketplace.payments.standin import StripeStandIn

        webhook_secret = "whsec_" + secrets.token_hex(16)
        standin = StripeStandIn(
            "127.0.0.1", stripe_port, webhook_url=f"http://{_reachable(host)}:{port}/v1/webhooks/stripe",
            webhook_secret=webhook_secret,
        ).start()
        app.config.update(STRIPE_API_KEY="sk_test_standin", STRIPE_API_BASE=standin.url,
                          STRIPE_WEBHOOK_SECRET=webhook_secret)
        click.echo(f"Stripe stand-in on {standin.url} (offline; succeed a payment with "
                   f"POST {standin.url}/_standin/payment_intents/<id>/succeed)")
    if not app.config.get("REDIS_URL"):
        stop = threading.Event()
        threading.Thread(target=run_periodic_forever, args=(app, stop), daemon=True, name="scheduler").start()
        click.echo("No REDIS_URL: background jobs and the schedule run in this process.")
    click.echo(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    # app.run() is a no-op under the flask command, so serve with werkzeug directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


def _reachable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@click.command("scheduler")
@with_appcontext
@click.option("--tick", default=1.0, show_default=True, help="Seconds between looks at the schedule.")
def scheduler_command(tick: float) -> None:
    """Enqueue the periodic jobs (claim expiry, validation sweep, auto-approval) on their intervals."""
    from marketplace.jobs import PERIODIC, run_periodic_forever

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("The scheduler enqueues into Redis: set REDIS_URL (or use `flask serve`).")
    click.echo("Scheduling: " + ", ".join(f"{p.name} every {p.every_seconds}s" for p in PERIODIC))
    run_periodic_forever(app, threading.Event(), tick)


def register(app: Flask) -> None:
    for command in (create_admin_command, demo_command, serve_command, scheduler_command):
        app.cli.add_command(command)

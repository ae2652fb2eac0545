"""`flask demo`: an empty database filled with something to try the API on."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from marketplace.audit import service as audit_log
from marketplace.auth import service as accounts
from marketplace.auth.models import Brand
from marketplace.auth.service import Principal
from marketplace.briefs import lifecycle
from marketplace.briefs import service as briefs
from marketplace.briefs.lifecycle import fund_offline
from marketplace.briefs.models import Brief
from marketplace.db.clock import utcnow
from marketplace.errors import Conflict
from marketplace.extensions import db


class NoSchema(Conflict):
    """The database has no tables yet: `flask db upgrade` has not run."""


class NotEmpty(Conflict):
    """The demo fills an empty database; this one has data."""


@dataclass
class Demo:
    """What `flask demo` made: lines for a person (shell comments), and the logins as variables."""

    lines: list[str]
    exports: dict[str, str] = field(default_factory=dict)

    def shell(self) -> list[str]:
        """Lines a shell can run as they are: the logins exported, everything else a comment."""
        return [f"# {line}" if line else "#" for line in self.lines] + [
            "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in self.exports.items())]


def require_schema() -> None:
    if not sa.inspect(db.engine).has_table(Brief.__tablename__):
        raise NoSchema("The database has no schema yet: run `flask --app wsgi db upgrade` first "
                       "(`make run` does it too), then `flask --app wsgi demo`.")


def require_empty() -> None:
    require_schema()
    briefs_made = db.session.scalar(sa.select(sa.func.count()).select_from(Brief))
    demo_brand = db.session.scalar(sa.select(Brand.id).where(Brand.email == BRAND_EMAIL))
    if briefs_made or demo_brand:
        raise NotEmpty(f"This database already has data ({briefs_made} brief{'s' if briefs_made != 1 else ''}); the demo "
                       "fills an empty one. "
                       "`flask --app wsgi demo --reset` deletes everything in it and fills it again.")


def wipe() -> None:
    """Delete every row of every table (the schema and its migration version stay)."""
    require_schema()
    db.session.remove()
    tables = db.metadata.sorted_tables
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            with audit_log.erasable(conn):
                for table in reversed(tables):
                    conn.execute(table.delete())


BRAND_EMAIL = "brand@demo.example"
WORKER_EMAIL = "worker@demo.example"
PASSWORD = "demo-password-123"


def seed() -> Demo:
    require_empty()
    brand, brand_key = accounts.sign_up_brand("Demo Running Co", BRAND_EMAIL)
    now = utcnow()
    brief_id = briefs.create_brief(brand.id, {
        "title": "Spring launch: lighter shoe, same grip",
        "objective": "conversions",
        "audience": "runners 25-40 in the UK",
        "key_message": "lighter shoe, same grip",
        "hook": "Stop wasting money on heavy trainers",
        "offer": "20% off, first 100 buyers",
        "prohibitions": ["no competitor names"],
        "reference_url": "https://example.com/ref.mp4",
        "landing_url": "https://shop.example.com/spring",
        "budget_cents": 50000,
        "currency": "usd",
        "target_cpa_cents": 600,
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=14),
        "auto_approve_after_hours": 72,
        "disclosure_required": True,
        "task_groups": [
            {"kind": "caption", "name": "A", "quantity": 150, "unit_price_cents": 60, "max_per_worker": 5,
             "instructions": "Write a caption that opens with the hook.",
             "proof": {"screenshot": "none", "text": {"required": True, "min_length": 20, "max_length": 300}}},
            {"kind": "caption", "name": "B", "quantity": 150, "unit_price_cents": 60, "max_per_worker": 5,
             "instructions": "Write a caption that leads with the offer.",
             "proof": {"screenshot": "none", "text": {"required": True, "min_length": 20, "max_length": 300}}},
            {"kind": "clip", "quantity": 100, "unit_price_cents": 100, "instructions": "Post a 15s clip.",
             "proof": {"screenshot": "required",
                       "link": {"required": True, "allowed_domains": ["tiktok.com", "instagram.com"]}}},
        ],
    })
    brief = db.session.get(Brief, brief_id)
    # Demo funding is booked as if Stripe had confirmed it, so the demo needs no Stripe at all.
    fund_offline(brief, "demo")
    lifecycle.publish(Principal("brand", brand.id), brief.id)
    worker = accounts.sign_up_worker(WORKER_EMAIL, PASSWORD, "Demo Worker", "GB")
    admin, admin_key = accounts.create_admin("admin@demo.example")
    states = _work_in_every_state(brief, worker.id, Principal("admin", admin.id))
    token, _ = accounts.log_in_worker(WORKER_EMAIL, PASSWORD)
    lines = [
        f"Brand  {brand.id}  API key: {brand_key}",
        f"Brief  {brief.id}  (live, {brief.committed_cents} cents in escrow)",
        f"Worker {worker.id}  email {WORKER_EMAIL}  password {PASSWORD}  (the worker app: /app/)",
        f"       token: {token}",
        f"Admin  API key: {admin_key}  (the console: /console/)",
        "The worker's work, one in every state:",
        *(f"  {state:<19} {item_id}" for state, item_id in states.items()),
        "",
        "Try, once the export line at the bottom is pasted into your shell",
        "(or run the demo as: eval \"$(.venv/bin/flask --app wsgi demo | tee /dev/stderr)\"):",
        "  curl -s -H \"Authorization: Bearer $BRAND_KEY\" http://127.0.0.1:5000/v1/briefs",
        "  curl -s -H \"Authorization: Bearer $WORKER_TOKEN\" http://127.0.0.1:5000/v1/me/claims",
        "  curl -s -H \"Authorization: Bearer $ADMIN_KEY\" 'http://127.0.0.1:5000/v1/review/submissions?status=needs_review'",
        "Pay the approved work: the worker sets up payouts (worker app, Earnings; the stand-in onboards at once);",
        "  the demo's brief was funded without Stripe, so give `make run`'s stand-in that money first:",
        f"  curl -X POST localhost:12111/_standin/balance -d amount={brief.committed_cents}",
        "  then: .venv/bin/flask --app wsgi payouts run   (it finds `make run`'s stand-in by itself)",
    ]
    exports = {"BRAND_KEY": brand_key, "ADMIN_KEY": admin_key, "WORKER_TOKEN": token, "WORKER_EMAIL": WORKER_EMAIL,
               "WORKER_PASSWORD": PASSWORD, "BRIEF_ID": brief.id}
    return Demo(lines, exports)


CAPTIONS = {
    "needs_review": "Lighter shoe, same grip: I ran 10k in them this morning #ad",
    "approved": "Stop wasting money on heavy trainers, these weigh nothing #ad",
    "rejected": "Great shoes, fast delivery, would buy again from this shop #ad",
    "revision_requested": "Twenty percent off for the first hundred buyers, go go go #ad",
    "auto_rejected": "No disclosure in this one, so the text check refuses it",
}
SUBMITTED_CAPTION = "Lead with the offer: twenty percent off the lighter shoe this spring #ad"


def _work_in_every_state(brief: Brief, worker_id: str, admin: Principal) -> dict[str, str]:
    """The demo worker's work, one item per state, through the same services the API calls.

    Validation runs here directly, in the foreground (the API's route enqueues it as a job instead),
    except for the one left `submitted`, whose checks have not run yet.
    """
    from marketplace.proofs import service as proofs
    from marketplace.proofs.validation import validate_submission
    from marketplace.reviews import service as reviews
    from marketplace.tasks import service as claims

    first, second = brief.task_groups[0], brief.task_groups[1]
    made: dict[str, str] = {}
    for state, caption in CAPTIONS.items():
        held = claims.claim(worker_id, first.id)
        submission = proofs.submit(worker_id, held.task_id, {"text": caption}, None)
        validate_submission(submission.id)
        made[state] = submission.id
    decisions = {"approved": ("approve", None, None), "rejected": ("reject", "off_brief", "Not about the shoe."),
                 "revision_requested": ("request_revision", "low_quality", "Open with the hook, please.")}
    for state, (decision, reason_code, reason) in decisions.items():
        reviews.decide(admin, decision, submission_ids=[made[state]], reason_code=reason_code, reason=reason)
    held = claims.claim(worker_id, second.id)
    made["submitted"] = proofs.submit(worker_id, held.task_id, {"text": SUBMITTED_CAPTION}, None).id
    db.session.commit()
    made["claimed"] = claims.claim(worker_id, second.id).task_id
    return made

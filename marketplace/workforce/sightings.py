"""Where workers are seen from: a keyed digest of the client's address and user agent at sign-up,
login and submission, so two accounts on one device can be told apart from two people, without
ever storing the address or the agent themselves."""

from __future__ import annotations

from marketplace.db.clock import utcnow
from marketplace.db.upsert import upsert_insert
from marketplace.extensions import db
from marketplace.keyed import keyed_digest
from marketplace.workforce.models import DEVICE_EVENTS, DeviceSighting


def device_digest(ip: str | None, user_agent: str | None) -> str:
    """HMAC (SECRET_KEY) of the address and agent; a NUL between them, so no pair spells another."""
    return keyed_digest(f"{ip or ''}\x00{user_agent or ''}")


def seen(worker_id: str, event: str, ip: str | None, user_agent: str | None) -> None:
    """Record that the worker was seen from this device, in the caller's transaction: one upsert,
    so a second sighting from the same device counts up instead of adding a row."""
    assert event in DEVICE_EVENTS, event
    now = utcnow()
    insert = upsert_insert(DeviceSighting.__table__).values(
        worker_id=worker_id, device=device_digest(ip, user_agent), first_seen_at=now, last_seen_at=now,
        last_event=event, seen_count=1)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=["worker_id", "device"],
        set_={"last_seen_at": now, "last_event": event,
              "seen_count": DeviceSighting.__table__.c.seen_count + 1}))

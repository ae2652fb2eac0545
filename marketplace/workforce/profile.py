"""A worker's profile: display name and country (on the account), languages, social accounts."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.auth import service as accounts
from marketplace.db.clock import utcnow
from marketplace.extensions import db
from marketplace.workforce.models import PLATFORMS, SocialAccount, WorkerLanguage


def handle_key(handle: str) -> str:
    """A handle as compared: without the '@' and case (platforms treat handles case-insensitively)."""
    return handle.strip().lstrip("@").lower()


def update_profile(worker_id: str, changes: dict) -> None:
    """Apply the fields present in `changes`; a list given replaces the list held. One transaction."""
    accounts.update_worker_identity(worker_id, display_name=changes.get("display_name"),
                                    country=changes.get("country"))
    if "languages" in changes:
        db.session.execute(sa.delete(WorkerLanguage).where(WorkerLanguage.worker_id == worker_id))
        if changes["languages"]:
            db.session.execute(sa.insert(WorkerLanguage), [
                {"worker_id": worker_id, "language": code} for code in dict.fromkeys(changes["languages"])])
    if "social_accounts" in changes:
        db.session.execute(sa.delete(SocialAccount).where(SocialAccount.worker_id == worker_id))
        by_platform = {a["platform"]: a["handle"].strip() for a in changes["social_accounts"]}
        if by_platform:
            now = utcnow()
            db.session.execute(sa.insert(SocialAccount), [
                {"worker_id": worker_id, "platform": platform, "handle": handle, "handle_key": handle_key(handle),
                 "updated_at": now} for platform, handle in by_platform.items()])
    db.session.commit()


def registered_handle(worker_id: str, platform: str) -> str | None:
    """The handle the worker registered on the platform (as they wrote it), or None: what the OCR
    check compares the handle read from a screenshot with (compare through handle_key)."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    return db.session.scalar(sa.select(SocialAccount.handle).where(
        SocialAccount.worker_id == worker_id, SocialAccount.platform == platform))


def profiles(worker_ids: list[str]) -> dict[str, dict]:
    """worker id → {languages, social_accounts}, in two statements for a page of workers."""
    out = {worker_id: {"languages": [], "social_accounts": []} for worker_id in worker_ids}
    if not worker_ids:
        return out
    for worker_id, language in db.session.execute(
            sa.select(WorkerLanguage.worker_id, WorkerLanguage.language)
            .where(WorkerLanguage.worker_id.in_(worker_ids)).order_by(WorkerLanguage.language)):
        out[worker_id]["languages"].append(language)
    order = sa.case({p: i for i, p in enumerate(PLATFORMS)}, value=SocialAccount.platform)
    for worker_id, platform, handle in db.session.execute(
            sa.select(SocialAccount.worker_id, SocialAccount.platform, SocialAccount.handle)
            .where(SocialAccount.worker_id.in_(worker_ids)).order_by(order)):
        out[worker_id]["social_accounts"].append({"platform": platform, "handle": handle})
    return out

"""Test data as plain functions that go through the HTTP API, as clients do: one module per domain.

The helpers most tests need are re-exported here (`from tests.factories import auth, live_brief`);
a domain's own kit is imported from its module (`from tests.factories.proofs import submit`).
"""

from tests.factories.accounts import (
    auth,
    make_admin,
    sign_up_brand,
    sign_up_worker,
    unique_email,
    workers,
)
from tests.factories.briefs import (
    BRIEF,
    brief_payload,
    brief_status,
    create_brief,
    fund_brief,
    live_brief,
)
from tests.factories.clock import hours_from_now, rfc3339, wait_for
from tests.factories.database import database_refuses, row_locked
from tests.factories.tasks import claim

__all__ = [
    "BRIEF", "auth", "brief_payload", "brief_status", "claim", "create_brief", "database_refuses",
    "fund_brief", "hours_from_now", "live_brief", "make_admin", "rfc3339", "row_locked",
    "sign_up_brand", "sign_up_worker", "unique_email", "wait_for", "workers",
]

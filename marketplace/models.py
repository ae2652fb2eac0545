"""Imports every domain's tables so that metadata (and Alembic) sees the whole schema."""

from marketplace.appeals.models import Appeal  # noqa: F401
from marketplace.audit.models import AuditEvent  # noqa: F401
from marketplace.auth.models import Admin, Brand, Credential, Worker  # noqa: F401
from marketplace.bonuses.models import Bonus  # noqa: F401
from marketplace.briefs.models import Brief, TaskGroup  # noqa: F401
from marketplace.cases.models import MoneyCase  # noqa: F401
from marketplace.events.models import Event  # noqa: F401
from marketplace.http.idempotency import IdempotencyRecord  # noqa: F401
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerLine  # noqa: F401
from marketplace.notifications.models import Notification  # noqa: F401
from marketplace.payments.models import Payment, Refund, StripeEvent  # noqa: F401
from marketplace.payouts.models import (  # noqa: F401
    PayoutAccount,
    PayoutBatch,
    PayoutItem,
    PayoutItemSubmission,
    PayoutSkip,
)
from marketplace.proofs.models import Submission, SubmissionCheck  # noqa: F401
from marketplace.tasks.models import Claim, Task  # noqa: F401
from marketplace.tracking.models import Click, ClickHourly, Conversion  # noqa: F401
from marketplace.webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: F401
from marketplace.workforce.models import (  # noqa: F401
    BrandBlock,
    DeviceSighting,
    GroupEligibility,
    GroupEligibilityValue,
    SocialAccount,
    Suspension,
    WorkerLanguage,
)

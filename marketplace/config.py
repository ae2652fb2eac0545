"""Settings from the environment (twelve-factor); API.md lists the names."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _host_map(value: str | None) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in (value or "").split(",") if "=" in item)
    return {host.strip().lower(): address.strip() for host, address in pairs if host.strip()}


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _database_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        instance_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance_path / 'marketplace.sqlite3'}"
    # Heroku-style URLs name the old scheme; we drive PostgreSQL through psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# The duplicate lookup probes each 16-bit chunk of a hash and its one-bit neighbours: by pigeonhole
# it finds every hash within 7 bits, and would silently miss some beyond (see find_near_duplicates).
MAX_DUPLICATE_HAMMING_THRESHOLD = 7


def check(config: dict) -> None:
    """Refuse, at start-up, settings the code cannot honour (rather than misbehave quietly later)."""
    from marketplace.http.origin import check_public_base_url
    from marketplace.http.ratelimit import parse_rate

    threshold = config["DUPLICATE_HAMMING_THRESHOLD"]
    if not 0 <= threshold <= MAX_DUPLICATE_HAMMING_THRESHOLD:
        raise ValueError(f"DUPLICATE_HAMMING_THRESHOLD={threshold}: must be 0 to {MAX_DUPLICATE_HAMMING_THRESHOLD}, "
                         "the distances the duplicate lookup finds them all at.")
    check_public_base_url(config.get("PUBLIC_BASE_URL"))
    if config.get("STORAGE_URL"):
        from marketplace.proofs.storage import parse_storage_url

        parse_storage_url(config["STORAGE_URL"])  # ValueError naming the setting
    if config.get("SMTP_URL"):
        from marketplace.notifications.email import parse_smtp_url

        parse_smtp_url(config["SMTP_URL"])  # ValueError naming the setting
    if config.get("PAYOUT_SCHEDULE"):
        from marketplace.jobs import interval_seconds

        interval_seconds(config["PAYOUT_SCHEDULE"], "PAYOUT_SCHEDULE")  # ValueError naming the setting
    if config.get("PAYOUT_MINIMUM_CENTS", 1) < 1:
        raise ValueError(f"PAYOUT_MINIMUM_CENTS={config['PAYOUT_MINIMUM_CENTS']}: must be 1 or more.")
    for name in ("CLICK_VISIT_WINDOW_SECONDS", "CLICK_CAP_PER_ADDRESS_PER_MINUTE"):
        if name in config and config[name] < 1:
            raise ValueError(f"{name}={config[name]}: must be 1 or more.")
    for name in ("CLAIM_RATE_LIMIT", "SUBMISSION_RATE_LIMIT", "LOGIN_RATE_LIMIT_PER_EMAIL",
                 "LOGIN_RATE_LIMIT_PER_ADDRESS"):
        if name in config:
            parse_rate(config[name])  # ValueError naming the setting's text


def from_environment(instance_path: Path) -> dict:
    """The app's configuration as read from the environment at start-up."""
    database_url = _database_url(instance_path)
    engine_options: dict = {"pool_pre_ping": True}
    if database_url.startswith("sqlite"):
        # The embedded default: one file, many threads (the in-process job runner).
        engine_options = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "RQ_QUEUE_PREFIX": os.environ.get("RQ_QUEUE_PREFIX", ""),
        "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY") or None,
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE") or None,
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        # Stripe signs events of connected accounts (account.updated, payout.failed…) sent to the
        # Connect endpoint with that endpoint's own secret.
        "STRIPE_CONNECT_WEBHOOK_SECRET": os.environ.get("STRIPE_CONNECT_WEBHOOK_SECRET") or None,
        "STRIPE_WEBHOOK_TOLERANCE_SECONDS": _int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300),
        "PLATFORM_FEE_BPS": _int("PLATFORM_FEE_BPS", 1000),
        # Payout batches started by the scheduler (e.g. "15m"; "off": only by an admin), paying every
        # worker whose available balance in a currency is at least PAYOUT_MINIMUM_CENTS.
        "PAYOUT_SCHEDULE": os.environ.get("PAYOUT_SCHEDULE", "off"),
        "PAYOUT_MINIMUM_CENTS": _int("PAYOUT_MINIMUM_CENTS", 1000),
        "STORAGE_DIR": os.environ.get("STORAGE_DIR") or str(instance_path / "storage"),
        # Proof files in an S3-compatible bucket (s3://bucket/prefix) instead of STORAGE_DIR, so
        # processes on several machines share them; the AWS_* variables are boto3's own.
        "STORAGE_URL": os.environ.get("STORAGE_URL") or None,
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL") or None,
        "LINK_CHECK_ALLOW_PRIVATE": _bool(os.environ.get("LINK_CHECK_ALLOW_PRIVATE")),
        # Outbound webhooks: https only and public addresses only, unless these (tests, local receivers) say so.
        "WEBHOOK_ALLOW_HTTP": _bool(os.environ.get("WEBHOOK_ALLOW_HTTP")),
        "WEBHOOK_ALLOW_PRIVATE": _bool(os.environ.get("WEBHOOK_ALLOW_PRIVATE")),
        "WEBHOOK_TIMEOUT_SECONDS": _int("WEBHOOK_TIMEOUT_SECONDS", 10),
        # Seconds to wait before each retry of a delivery that failed: about three days in all, then
        # the delivery fails and its endpoint is disabled.
        "WEBHOOK_RETRY_SCHEDULE": os.environ.get("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,86400,86400"),
        "CLAIM_TTL_MINUTES": _int("CLAIM_TTL_MINUTES", 60),
        # A rejection or an auto-rejection can be appealed for this long after it was decided.
        "APPEAL_WINDOW_DAYS": _int("APPEAL_WINDOW_DAYS", 7),
        # Results: a variant needs this many conversions before it can win or tie; a group whose CPA
        # exceeds 3x the brief's target is paused once it has spent at least STOP_RULE_MIN_SPEND_CENTS.
        "VERDICT_MIN_CONVERSIONS": _int("VERDICT_MIN_CONVERSIONS", 10),
        "STOP_RULE_MIN_SPEND_CENTS": _int("STOP_RULE_MIN_SPEND_CENTS", 5000),
        # Per-worker sliding windows, written like "30/minute", "5/10s" or "off".
        "CLAIM_RATE_LIMIT": os.environ.get("CLAIM_RATE_LIMIT", "30/minute"),
        "SUBMISSION_RATE_LIMIT": os.environ.get("SUBMISSION_RATE_LIMIT", "20/minute"),
        # Logins and sign-ups: tight per e-mail (guessing one account's password), generous per
        # client address (an office behind one NAT logs in together).
        "LOGIN_RATE_LIMIT_PER_EMAIL": os.environ.get("LOGIN_RATE_LIMIT_PER_EMAIL", "10/10minutes"),
        "LOGIN_RATE_LIMIT_PER_ADDRESS": os.environ.get("LOGIN_RATE_LIMIT_PER_ADDRESS", "100/minute"),
        # How many proxies in front of the app append to X-Forwarded-For; 0 trusts none of it (a
        # client could write anything there), and request.remote_addr is the peer's address.
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0),
        # The origin tracked links, screenshot URLs and Stripe's return links are written with.
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or None,
        # Tracked links: one visitor (address and user agent) counts once per link per window, and
        # one address writes at most this many clicks a minute; every request still redirects.
        "CLICK_VISIT_WINDOW_SECONDS": _int("CLICK_VISIT_WINDOW_SECONDS", 30 * 60),
        "CLICK_CAP_PER_ADDRESS_PER_MINUTE": _int("CLICK_CAP_PER_ADDRESS_PER_MINUTE", 60),
        "DUPLICATE_HAMMING_THRESHOLD": _int("DUPLICATE_HAMMING_THRESHOLD", 6),
        # OCR of screenshots for briefs with disclosure_on_media (scripts/ocr.sh installs it).
        "OCR_TESSERACT_BINARY": os.environ.get("OCR_TESSERACT_BINARY", "tesseract"),
        "OCR_TIMEOUT_SECONDS": _int("OCR_TIMEOUT_SECONDS", 30),
        # Proof validation jobs: a submission still validating after this long is re-enqueued by
        # the sweep; after this many started attempts it goes to a person instead.
        "VALIDATION_STUCK_AFTER_SECONDS": _int("VALIDATION_STUCK_AFTER_SECONDS", 600),
        "VALIDATION_MAX_ATTEMPTS": _int("VALIDATION_MAX_ATTEMPTS", 3),
        # Tests/dev only, like /etc/hosts for the link check: "shop.tiktok.com=127.0.0.1,…".
        "LINK_CHECK_STATIC_HOSTS": _host_map(os.environ.get("LINK_CHECK_STATIC_HOSTS")),
        "WORKER_TOKEN_TTL_HOURS": _int("WORKER_TOKEN_TTL_HOURS", 24 * 14),
        # Workers' notifications are also e-mailed when set: smtp://[user:password@]host[:port], or
        # smtps:// (TLS from the start); smtp:// upgrades with STARTTLS when the server offers it.
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "SMTP_FROM": os.environ.get("SMTP_FROM", "Marketplace <no-reply@marketplace.invalid>"),
        # JSON bodies are small; uploads get their own, larger allowance.
        "MAX_JSON_BYTES": _int("MAX_JSON_BYTES", 1024 * 1024),
        "MAX_UPLOAD_BYTES": _int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # flask-smorest / OpenAPI
        "API_TITLE": "Micro-task marketplace API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_REDOC_PATH": None,
        "OPENAPI_SWAGGER_UI_PATH": None,
    }

"""The Stripe gateway: the only module that imports stripe."""

from __future__ import annotations

import time
from dataclasses import dataclass

import stripe
from flask import current_app

from marketplace.errors import BadGateway, InvalidInput, ServiceUnavailable
from marketplace.http.inputs import load_json

# Re-exported so services can tell outcomes apart without importing stripe themselves.
StripeError = stripe.StripeError
CardError = stripe.CardError
InvalidRequestError = stripe.InvalidRequestError
IdempotencyError = stripe.IdempotencyError
SignatureVerificationError = stripe.SignatureVerificationError


class MalformedEvent(ValueError):
    """A payload whose signature verifies but which is no Stripe event we can read: not JSON our
    loader takes (text the database cannot store, nesting past the limit), or not an event object."""


class OutcomeUnknown(Exception):
    """The request may or may not have reached Stripe (timeout, dropped connection, 5xx)."""


def configured() -> bool:
    return bool(current_app.config.get("STRIPE_API_KEY"))


def require_configured() -> None:
    """503 unless Stripe is configured: checked before anything is reserved for a Stripe call."""
    if not current_app.config.get("STRIPE_API_KEY"):
        raise ServiceUnavailable(
            "Payments are not configured on this server (STRIPE_API_KEY is unset)."
        )


def _client() -> stripe.StripeClient:
    cfg = current_app.config
    require_configured()
    cache = current_app.extensions.setdefault("stripe_clients", {})
    key = (cfg["STRIPE_API_KEY"], cfg.get("STRIPE_API_BASE"))
    if key not in cache:
        options: dict = {"max_network_retries": 0}
        if cfg.get("STRIPE_API_BASE"):
            options["base_addresses"] = {"api": cfg["STRIPE_API_BASE"]}
        cache[key] = stripe.StripeClient(cfg["STRIPE_API_KEY"], **options)
    return cache[key]


# How many fresh keys a call moves on to past keys whose saved answer is a 500 (see _call).
SPENT_KEYS_SKIPPED = 20


def _call(fn, *args, **kwargs):
    """Run a Stripe call, sorting failures into: a definite 'no' (raised as is) or unknown.

    Stripe saves whatever a keyed request answered, a 500 included, and replays it for the same
    key for 24 hours: retrying with that key could never succeed. So a replayed 500 moves on to
    the next key of a deterministic series (`key`, `key:1`, `key:2`…), where the first fresh 500
    stops as unknown. Safe because every caller that moves money looks for the object at Stripe
    (metadata carrying our id) before sending again, so a 500 that did the work is found first.
    """
    options = kwargs.get("options") or {}
    base_key = options.get("idempotency_key")
    for step in range(SPENT_KEYS_SKIPPED + 1):
        if base_key is not None:
            kwargs["options"] = {**options, "idempotency_key": base_key if step == 0 else f"{base_key}:{step}"}
        try:
            return _call_once(fn, *args, **kwargs)
        except OutcomeUnknown as exc:
            cause = exc.__cause__
            replayed = isinstance(cause, stripe.APIError) and (getattr(cause, "headers", None) or {}).get(
                "Idempotent-Replayed") == "true"
            if base_key is None or not replayed:
                raise
    raise OutcomeUnknown(f"every idempotency key from {base_key} holds a saved error")


def _call_once(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise OutcomeUnknown(str(exc)) from exc
    except stripe.APIError as exc:  # Stripe's 5xx: it may have done the work
        raise OutcomeUnknown(str(exc)) from exc
    except stripe.AuthenticationError as exc:
        raise ServiceUnavailable("The payment provider refused our credentials.") from exc


def check_reachable() -> None:
    """Stripe answers with our key (a balance read): ServiceUnavailable or OutcomeUnknown if not."""
    client = _client()
    try:
        _call(client.v1.balance.retrieve)
    except stripe.StripeError as exc:
        raise ServiceUnavailable(f"The payment provider refused: {refusal(exc)}") from exc


def create_payment_intent(*, amount_cents: int, currency: str, idempotency_key: str, metadata: dict, description: str):
    client = _client()
    try:
        return _call(
            client.v1.payment_intents.create,
            params={
                "amount": amount_cents,
                "currency": currency,
                "metadata": metadata,
                "description": description,
                "automatic_payment_methods": {"enabled": True},
            },
            options={"idempotency_key": idempotency_key},
        )
    except OutcomeUnknown as exc:
        raise BadGateway("The payment provider did not answer; try again.") from exc


def retrieve_payment_intent(payment_intent_id: str):
    try:
        return _call(_client().v1.payment_intents.retrieve, payment_intent_id)
    except OutcomeUnknown as exc:
        raise BadGateway("The payment provider did not answer; try again.") from exc


def list_refunds(payment_intent_id: str) -> list:
    """Every refund of a PaymentIntent."""
    return _every(_client().v1.refunds.list, {"payment_intent": payment_intent_id})


def create_refund(*, payment_intent_id: str, amount_cents: int, idempotency_key: str, metadata: dict):
    """Raises OutcomeUnknown when we cannot tell whether Stripe made the refund."""
    return _call(
        _client().v1.refunds.create,
        params={"payment_intent": payment_intent_id, "amount": amount_cents, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    )


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: int
    object: dict
    account: str | None = None  # the connected account a Connect event happened on


def verify_webhook(payload: bytes, signature_header: str | None,
                   secret_setting: str = "STRIPE_WEBHOOK_SECRET") -> WebhookEvent:
    """Check Stripe's signature with the endpoint's secret (`secret_setting`: the platform's, or the
    Connect endpoint's), and refuse timestamps too old or too far in the future.

    stripe-python only rejects old timestamps; a signed event stamped in the future is
    as suspicious as a stale one, so both sides of the tolerance are enforced here.
    """
    secret = current_app.config.get(secret_setting)
    if not secret:
        raise ServiceUnavailable(f"Webhooks are not configured on this server ({secret_setting} is unset).")
    if not signature_header:
        raise SignatureVerificationError("No Stripe-Signature header.", signature_header)
    tolerance = current_app.config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureVerificationError("Payload is not UTF-8.", signature_header) from exc
    stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance)
    timestamps = [
        int(value) for name, _, value in (p.strip().partition("=") for p in signature_header.split(","))
        if name == "t" and value.isdigit()
    ]
    if not timestamps or timestamps[0] > time.time() + tolerance:
        raise SignatureVerificationError("Timestamp is in the future.", signature_header)
    # Signed, so Stripe's (or someone holding our secret): read it with the project's own loader,
    # which refuses what PostgreSQL cannot store and nesting Python cannot follow.
    try:
        data = load_json(text)
    except (ValueError, InvalidInput) as exc:
        detail = exc.detail if isinstance(exc, InvalidInput) else str(exc)
        raise MalformedEvent(f"The signed payload is not JSON this server can read: {detail}") from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"The signed payload is a JSON {type(data).__name__ if data is not None else 'null'}, "
                             "not a Stripe event object.")
    try:
        event_object = (data.get("data") or {}).get("object") or {}
        if not isinstance(event_object, dict) or not isinstance(data["id"], str) or not isinstance(data["type"], str):
            raise TypeError
        return WebhookEvent(
            id=data["id"], type=data["type"], created=int(data.get("created") or 0),
            object=event_object, account=data.get("account") or None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MalformedEvent("The signed payload is not a Stripe event object (id, type and data.object).") from None


# Connect: workers' accounts and the transfers that pay them ---------------------------------


def create_connect_account(*, worker_id: str, email: str, country: str, idempotency_key: str):
    """An Express account that can receive transfers. Raises OutcomeUnknown when unsure."""
    return _call(
        _client().v1.accounts.create,
        params={
            "type": "express",
            "country": country,
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"worker_id": worker_id},
        },
        options={"idempotency_key": idempotency_key},
    )


def create_account_link(*, account_id: str, refresh_url: str, return_url: str):
    """A fresh, short-lived onboarding link (Stripe's links expire after a few minutes)."""
    return _call(
        _client().v1.account_links.create,
        params={"account": account_id, "type": "account_onboarding",
                "refresh_url": refresh_url, "return_url": return_url},
    )


def create_transfer(*, amount_cents: int, currency: str, destination: str, transfer_group: str,
                    metadata: dict, idempotency_key: str):
    """One transfer to a connected account. OutcomeUnknown: it may exist; look it up before resending."""
    return _call(
        _client().v1.transfers.create,
        params={"amount": amount_cents, "currency": currency, "destination": destination,
                "transfer_group": transfer_group, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    )


def list_transfers(transfer_group: str) -> list:
    """Every transfer in a group."""
    return _every(_client().v1.transfers.list, {"transfer_group": transfer_group})


def _every(list_method, filters: dict) -> list:
    """Every object a Stripe list call finds, all pages (Stripe answers at most 100 at a time)."""
    found, after = [], None
    while True:
        params = {**filters, "limit": 100, **({"starting_after": after} if after else {})}
        page = _call(list_method, params=params)
        found.extend(page.data)
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id


def our_id(stripe_object, key: str) -> str | None:
    """Our own id in a Stripe object's metadata (payout_item_id, refund_id), if it carries one."""
    return stripe_object.metadata.to_dict().get(key) if stripe_object.metadata else None


def refusal(exc: Exception) -> str:
    """Why Stripe said no, for a person: its error code and message."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "user_message", None) or str(exc)
    return f"{code}: {message}" if code else str(message)


def create_transfer_reversal(*, transfer_id: str, idempotency_key: str, metadata: dict):
    """Pull a transfer back from the connected account to the platform balance."""
    return _call(
        _client().v1.transfers.reversals.create,
        transfer_id,
        params={"metadata": metadata},
        options={"idempotency_key": idempotency_key},
    )


# The platform's balance: what is available now, what is pending and when it becomes available ------


def insufficient_funds(exc: Exception) -> bool:
    """Stripe refused a transfer because the available balance cannot cover it (pending funds
    do not count). Not the item's fault: it waits for the funds rather than failing."""
    return getattr(exc, "code", None) == "balance_insufficient"


def platform_balance() -> dict[str, dict[str, int]]:
    """currency → {"available": cents, "pending": cents} of the platform's Stripe balance."""
    balance = _call(_client().v1.balance.retrieve)
    out: dict[str, dict[str, int]] = {}
    for side in ("available", "pending"):
        for row in getattr(balance, side) or []:
            out.setdefault(row.currency, {"available": 0, "pending": 0})[side] += int(row.amount)
    return out


def pending_funds(currency: str, pending_total: int) -> list[tuple[int, int]]:
    """(available_on, net cents) of the balance's pending transactions in `currency`, soonest first.

    Stripe's list has no status filter and runs newest first; pending transactions are the
    recent ones, so pages are read until their nets add up to the balance's pending total (or
    the list ends), not through the whole history.
    """
    found, seen, after = [], 0, None
    while True:
        params = {"currency": currency, "limit": 100, **({"starting_after": after} if after else {})}
        page = _call(_client().v1.balance_transactions.list, params=params)
        for txn in page.data:
            if txn.status == "pending":
                found.append((int(txn.available_on), int(txn.net)))
                seen += int(txn.net)
        if not page.has_more or not page.data or (found and seen == pending_total):
            return sorted(found)
        after = page.data[-1].id


@dataclass(frozen=True)
class ChargeFunds:
    """What a succeeded payment brought into the balance, as its charge's balance transaction says."""

    charge_id: str
    balance_transaction_id: str
    amount: int
    fee: int
    net: int
    currency: str
    available_on: int


def charge_funds(payment_intent_id: str, charge_id: str | None = None) -> ChargeFunds:
    """The balance transaction of a PaymentIntent's charge (its latest_charge unless named).
    Raises OutcomeUnknown when Stripe cannot be read now, StripeError when it refuses."""
    if charge_id is None:
        intent = _call(_client().v1.payment_intents.retrieve, payment_intent_id)
        charge_id = intent.latest_charge if isinstance(intent.latest_charge, str) else getattr(
            intent.latest_charge, "id", None)
        if not charge_id:
            raise OutcomeUnknown(f"PaymentIntent {payment_intent_id} has no charge yet")
    charge = _call(_client().v1.charges.retrieve, charge_id, params={"expand": ["balance_transaction"]})
    txn = charge.balance_transaction
    if txn is None or isinstance(txn, str):
        raise OutcomeUnknown(f"charge {charge_id} has no readable balance transaction yet")
    return ChargeFunds(charge_id=charge.id, balance_transaction_id=txn.id, amount=int(txn.amount),
                       fee=int(txn.fee), net=int(txn.net), currency=txn.currency,
                       available_on=int(txn.available_on))


def balance_transactions() -> list:
    """Every balance transaction of the platform, with its source expanded (a transfer reversal's
    source names the transfer it reversed)."""
    found, after = [], None
    while True:
        params = {"limit": 100, "expand": ["data.source"], **({"starting_after": after} if after else {})}
        page = _call(_client().v1.balance_transactions.list, params=params)
        found.extend(page.data)
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id

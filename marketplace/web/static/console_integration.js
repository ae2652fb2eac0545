// The console's brand-integration pages (a brand's key): webhook endpoints, an endpoint's
// deliveries with Redeliver, and API keys. A secret (an endpoint's signing secret, a new API key)
// is shown once, in the page only: never stored, never put in a URL, never logged, and gone on reload.
import {
  ApiError, announce, field, h, humanize, replace, submitting, when, banner, errorBox,
} from "./common.js";

// The event types and key scopes of the API (API.md "Brand integration"); the server vets them again.
const EVENT_TYPES = [
  "brief.funded", "brief.live", "brief.paused", "brief.completed", "brief.cancelled",
  "submission.needs_review", "submission.auto_rejected", "submission.approved", "submission.rejected",
  "submission.revision_requested", "appeal.decided", "refund.succeeded",
];
const SCOPES = ["briefs:read", "briefs:write", "review:write", "conversions:write", "webhooks:write", "keys:write"];
const POLL_MS = 2000; // while a delivery is due now
const POLL_MAX_MS = 60000; // while the next one waits for a later retry
const PAGE = 50;

let ctx = null; // { api, main, live, me, onStop, keyInUse } from console.js, fresh on each view

// console.js's router asks for these views on every show(); the nav links are a brand's only
// (the endpoints answer 403 to an admin's key).
export function brandIntegration(context) {
  ctx = context;
  for (const view of ["webhooks", "api-keys"]) {
    const link = document.querySelector(`#nav a[data-view="${view}"]`);
    if (link) link.hidden = context.me.role !== "brand";
  }
  return { webhooks: renderEndpoints, webhook: renderDeliveries, "api-keys": renderKeys };
}

// A panel holding a secret the API shows this once. "I have saved it" removes it from the page;
// a reload, or leaving the view, loses it too: nothing keeps it.
function secretOnce(slot, title, secret, note) {
  const input = h("textarea", { id: "new-secret", readonly: true, rows: 2, autocomplete: "off", spellcheck: "false" });
  input.value = secret;
  const copied = h("span", { class: "hint", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "secondary", id: "copy-secret" }, "Copy");
  copy.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      copied.textContent = "Copied.";
    } catch (error) {
      copied.textContent = "Selected: copy it with your keyboard.";
    }
  });
  const done = h("button", { type: "button", id: "secret-saved" }, "I have saved it");
  const panel = h("section", { class: "notice secret-once", id: "secret-once", "aria-labelledby": "secret-title" },
    h("h3", { id: "secret-title" }, title),
    h("p", {}, h("strong", {}, "Copy it now: it is shown this once and never again. "), note || ""),
    h("div", { class: "field" }, h("label", { for: "new-secret" }, "Secret"), h("div", { class: "tracked" }, input, copy)),
    h("div", { class: "row" }, done, copied));
  done.addEventListener("click", () => { input.value = ""; panel.remove(); });
  replace(slot, panel);
  input.focus();
  input.select();
}

// A destructive or secret-changing action asks once in the page (no window.confirm: it is easy to
// dismiss by reflex and blocks the page): the button becomes a question with Yes and Cancel.
function confirming(label, question, yesLabel, action, { danger = false, id } = {}) {
  const box = h("span", { class: "row confirm" });
  const start = h("button", { type: "button", class: danger ? "danger" : "secondary", id }, label);
  const reset = () => replace(box, start);
  start.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: danger ? "danger" : "", "data-confirm": "yes" }, yesLabel);
    const no = h("button", { type: "button", class: "secondary" }, "Cancel");
    no.addEventListener("click", reset);
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      no.disabled = true;
      try {
        await action();
      } finally {
        if (box.isConnected) reset();
      }
    });
    replace(box, h("span", { class: "hint" }, question), yes, no);
    yes.focus();
  });
  reset();
  return box;
}

// A card's facts as label/value pairs: readable on a phone, where a wide table would need scrolling.
function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

function checkboxGroup(id, name, legend, values, checked, hint) {
  const boxes = values.map((value) => {
    const boxId = `${id}-${value.replace(/[^a-z0-9]+/gi, "-")}`;
    return h("label", { class: "choice", for: boxId },
      h("input", { type: "checkbox", id: boxId, name, value, checked: checked.includes(value) }), " ", value);
  });
  const set = h("fieldset", { class: "field choices", id, "data-field": legend.field, "aria-describedby": `${id}-error` },
    h("legend", {}, legend.text), hint ? h("p", { class: "hint" }, hint) : null, ...boxes,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }));
  return set;
}

function chosen(group, name) {
  return [...group.querySelectorAll(`input[name="${name}"]:checked`)].map((box) => box.value);
}

// ---- webhook endpoints -------------------------------------------------------------------------

function endpointState(endpoint) {
  if (endpoint.disabled_at) {
    return h("span", {}, h("strong", { class: "badge outcome-fail" }, "Disabled"),
      h("div", { class: "hint" }, `since ${when(endpoint.disabled_at)}: its deliveries failed for the whole retry schedule`));
  }
  return h("span", { class: "badge outcome-pass" }, "Enabled");
}

async function renderEndpoints() {
  const { api, main } = ctx;
  const secretSlot = h("div", { id: "secret-slot" });
  const url = h("input", { id: "endpoint-url", name: "url", type: "url", inputmode: "url", autocomplete: "off", spellcheck: "false", required: true, placeholder: "https://hooks.example.com/marketplace" });
  const every = h("input", { type: "checkbox", id: "endpoint-every", name: "every", checked: true });
  const types = checkboxGroup("endpoint-events", "event", { field: "events", text: "Event types" }, EVENT_TYPES, [],
    "Or only some of them:");
  const setTypes = () => { for (const box of types.querySelectorAll("input")) box.disabled = every.checked; };
  every.addEventListener("change", setTypes);
  setTypes();
  const form = h("form", { class: "card", id: "endpoint-form", novalidate: true },
    h("h3", {}, "Add an endpoint"), banner(),
    field("URL", url, "https:// on a public address. Deliveries are signed per Standard Webhooks; redirects are not followed."),
    h("div", { class: "field" }, h("label", { class: "choice", for: "endpoint-every" }, every, " Every event type")),
    types,
    h("button", { type: "submit" }, "Add endpoint"));
  const list = h("section", { id: "endpoints", "aria-labelledby": "endpoints-title" });
  replace(main, h("h2", {}, "Webhooks"), secretSlot, list, form);

  async function load() {
    try {
      const page = await api.get("/v1/webhook-endpoints", { limit: 100 });
      const rows = page.data || [];
      replace(list, h("h3", { id: "endpoints-title" }, "Endpoints"), rows.length
        ? h("ul", { class: "plain", id: "endpoint-list" }, rows.map(endpointRow))
        : h("p", { class: "hint", id: "no-endpoints" }, "No endpoints yet: add one below to receive your events."));
    } catch (error) {
      replace(list, h("h3", { id: "endpoints-title" }, "Endpoints"), errorBox(error));
    }
  }

  function endpointRow(endpoint) {
    const id = encodeURIComponent(endpoint.id);
    const rotate = confirming("Rotate secret", "A new secret? The old one keeps signing for 24 hours.", "Rotate", async () => {
      try {
        const rotated = await api.post(`/v1/webhook-endpoints/${id}/rotate-secret`);
        secretOnce(secretSlot, "The endpoint's new signing secret", rotated.secret,
          `For 24 hours (until ${when(rotated.previous_secret_expires_at)}) the old secret signs alongside it.`);
        await load();
      } catch (error) {
        replace(secretSlot, errorBox(error));
      }
    });
    const remove = confirming("Delete", "Delete it and its delivery history?", "Delete", async () => {
      try {
        await api.del(`/v1/webhook-endpoints/${id}`);
        announce(ctx.live, "Endpoint deleted.");
        await load();
      } catch (error) {
        replace(secretSlot, errorBox(error));
      }
    }, { danger: true });
    // A disabled endpoint (its deliveries failed for the whole retry schedule) is turned back on once its
    // receiver is fixed: its waiting deliveries go out again, on a fresh retry schedule.
    let enable = null;
    if (endpoint.disabled_at) {
      enable = h("button", { type: "button", class: "enable-endpoint" }, "Enable");
      enable.addEventListener("click", async () => {
        enable.disabled = true;
        try {
          await api.post(`/v1/webhook-endpoints/${id}/enable`);
          announce(ctx.live, "Endpoint enabled: its waiting deliveries are sent again.");
          await load();
        } catch (error) {
          enable.disabled = false;
          replace(secretSlot, errorBox(error));
        }
      });
    }
    const events = endpoint.events || [];
    return h("li", { class: "card endpoint", dataset: { id: endpoint.id } },
      h("p", { class: "endpoint-url" }, h("code", {}, endpoint.url)),
      facts([
        ["State", [endpointState(endpoint), endpoint.previous_secret_expires_at
          ? h("div", { class: "hint" }, `Old secret also signs until ${when(endpoint.previous_secret_expires_at)}`) : null]],
        ["Events", events.includes("*") ? "Every event" : events.join(", ")],
        ["Added", when(endpoint.created_at)],
      ]),
      h("div", { class: "row" }, enable, h("a", { class: "button secondary", href: `#webhook/${id}` }, "Deliveries"), rotate, remove));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const events = every.checked ? ["*"] : chosen(types, "event");
      if (!events.length) {
        throw new ApiError(422, { detail: "Choose the events to send.", errors: { events: ["Choose every event type or some of them."] } });
      }
      const created = await api.post("/v1/webhook-endpoints", { url: url.value.trim(), events });
      url.value = "";
      secretSlot.replaceChildren();
      secretOnce(secretSlot, "The endpoint's signing secret", created.secret,
        "Verify each delivery's webhook-signature with it (any Standard Webhooks library does).");
      announce(ctx.live, "Endpoint added. Copy its secret now.");
      await load();
    });
  });
  await load();
}

// ---- an endpoint's deliveries --------------------------------------------------------------------

function lastAttempt(delivery) {
  const attempts = delivery.attempts || [];
  return attempts.length ? attempts[attempts.length - 1] : null;
}

function deliveryStatus(status) {
  const cls = { succeeded: "outcome-pass", failed: "outcome-fail", pending: "outcome-warn" }[status] || "";
  return h("span", { class: `badge ${cls}`, dataset: { status } }, humanize(status));
}

async function renderDeliveries(endpointId) {
  const { api, main } = ctx;
  const path = `/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries`;
  const heading = h("p", { class: "hint", id: "delivery-endpoint" }, endpointId);
  const result = h("div", { id: "redeliver-result", "aria-live": "polite" });
  const list = h("div", { id: "deliveries" }, h("p", {}, "Loading…"));
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh-deliveries" }, "Refresh");
  const more = h("button", { type: "button", class: "secondary", id: "more-deliveries", hidden: true }, "Load older deliveries");
  replace(main, h("p", {}, h("a", { href: "#webhooks" }, "← Webhooks")), h("h2", {}, "Deliveries"), heading,
    h("div", { class: "row" }, refresh), result, list, more);

  // The endpoint's URL for the heading (no single-endpoint GET: it is in the list).
  api.get("/v1/webhook-endpoints", { limit: 100 }).then((page) => {
    const endpoint = (page.data || []).find((e) => e.id === endpointId);
    if (endpoint) replace(heading, h("code", {}, endpoint.url), " ", endpointState(endpoint));
  }, () => {});

  // Each event's type, from the brand's event list (it needs briefs:read: without it, ids only).
  const types = new Map();
  const typesLoaded = api.get("/v1/events", { limit: 500 }).then((page) => {
    for (const event of page.data || []) types.set(event.id, event.type);
  }, () => {});

  let stopped = false;
  let timer = null;
  ctx.onStop(() => { stopped = true; clearTimeout(timer); });

  let rows = [];
  let cursor = null;
  let latest = 0; // an older answer (a poll overtaken by a Refresh) must not land over a newer one
  // Newest first; `older` appends the next page, anything else starts again from the newest
  // (a poll, a Refresh, after Redeliver).
  async function load(older = false) {
    const mine = ++latest;
    clearTimeout(timer);
    let page;
    try {
      page = await api.get(path, { limit: PAGE, cursor: older ? cursor : null });
    } catch (error) {
      if (!stopped && mine === latest) replace(list, errorBox(error));
      return;
    }
    await typesLoaded;
    if (stopped || mine !== latest) return;
    rows = older ? [...rows, ...(page.data || [])] : page.data || [];
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
    replace(list, rows.length ? [h("p", { class: "hint" }, "Each event sent to this endpoint, newest first, with its attempts."),
      h("ul", { class: "plain", id: "delivery-list" }, rows.map(deliveryRow))]
      : h("p", { class: "hint", id: "no-deliveries" }, "Nothing sent to this endpoint yet."));
    // A pending delivery is on its way or waits for a retry: look again when it is due.
    const due = rows.filter((row) => row.status === "pending")
      .map((row) => (row.next_attempt_at ? new Date(row.next_attempt_at).getTime() - Date.now() : 0));
    if (due.length) timer = setTimeout(() => load(), Math.min(POLL_MAX_MS, Math.max(POLL_MS, Math.min(...due) + 1000)));
  }

  function deliveryRow(delivery) {
    const last = lastAttempt(delivery);
    const attempts = delivery.attempts || [];
    // One Idempotency-Key per button: a double click sends the event again once.
    const idempotencyKey = crypto.randomUUID ? crypto.randomUUID() : `${delivery.id}-${Date.now()}`;
    const again = h("button", { type: "button", class: "secondary redeliver" }, "Redeliver");
    again.addEventListener("click", async () => {
      again.disabled = true;
      try {
        const answer = await api.post(`/v1/events/${encodeURIComponent(delivery.event_id)}/redeliver`, {}, { idempotencyKey });
        const n = answer.deliveries || 0;
        replace(result, h("p", { class: "notice", id: "redeliver-notice" },
          n ? `Event ${delivery.event_id} will be sent again to ${n} endpoint${n === 1 ? "" : "s"}.`
            : `Event ${delivery.event_id}: no enabled endpoint takes it now.`));
        announce(ctx.live, result.textContent);
        await load();
      } catch (error) {
        replace(result, errorBox(error));
        again.disabled = false;
      }
    });
    const code = last && last.status_code !== null && last.status_code !== undefined ? String(last.status_code) : "no answer";
    return h("li", { class: `card delivery${delivery.status === "failed" ? " has-failure" : ""}`, dataset: { id: delivery.id, event: delivery.event_id } },
      h("div", { class: "row" }, deliveryStatus(delivery.status), types.has(delivery.event_id) ? h("strong", { class: "event-type" }, types.get(delivery.event_id)) : null,
        h("code", {}, delivery.event_id)),
      facts([
        ["Attempts", String(delivery.attempt_count)],
        ["Last attempt", last ? when(last.at) : "—"],
        last ? ["Status code", code] : null,
        last ? ["Duration", `${last.duration_ms} ms`] : null,
        last && last.error ? ["Error", h("span", { class: "delivery-error" }, last.error)] : null,
        delivery.status === "pending" && delivery.next_attempt_at ? ["Next attempt", when(delivery.next_attempt_at)] : null,
        ["Queued", when(delivery.created_at)],
      ]),
      attempts.length > 1 ? h("details", {}, h("summary", {}, "Every attempt"), h("ol", { class: "attempts" }, attempts.map((a) => h("li", {},
        `${when(a.at)}: ${a.status_code ?? "no answer"}, ${a.duration_ms} ms`, a.error ? ` — ${a.error}` : "")))) : null,
      h("div", { class: "row" }, again));
  }

  refresh.addEventListener("click", () => load());
  more.addEventListener("click", () => load(true));
  await load();
}

// ---- API keys --------------------------------------------------------------------------------------

function expiry(key) {
  if (!key.expires_at) return "never";
  const at = new Date(key.expires_at);
  return at.getTime() <= Date.now() ? h("span", {}, h("strong", { class: "badge outcome-fail" }, "expired"), " ", when(key.expires_at))
    : when(key.expires_at);
}

async function renderKeys() {
  const { api, main } = ctx;
  const secretSlot = h("div", { id: "secret-slot" });
  const name = h("input", { id: "key-name", name: "name", autocomplete: "off", maxlength: 100, required: true });
  const scopes = checkboxGroup("key-scopes", "scope", { field: "scopes", text: "Scopes" }, SCOPES, ["briefs:read"],
    "What the key may do; a request outside them is refused (403 naming the scope).");
  const hours = h("input", { id: "key-hours", name: "expires_in_hours", inputmode: "numeric", autocomplete: "off" });
  const form = h("form", { class: "card", id: "key-form", novalidate: true },
    h("h3", {}, "Make a key"), banner(), field("Name", name, "To tell your keys apart, e.g. \"shop backend\"."),
    scopes, field("Expires after (hours)", hours, "Leave empty for a key that never expires."),
    h("button", { type: "submit" }, "Make key"));
  const list = h("section", { id: "keys", "aria-labelledby": "keys-title" });
  replace(main, h("h2", {}, "API keys"), secretSlot, list, form);

  async function load() {
    try {
      const page = await api.get("/v1/api-keys", { limit: 100 });
      const rows = page.data || [];
      replace(list, h("h3", { id: "keys-title" }, "Keys"), rows.length
        ? h("ul", { class: "plain", id: "key-list" }, rows.map(keyRow)) : h("p", { class: "hint", id: "no-keys" }, "No keys."));
    } catch (error) {
      replace(list, h("h3", { id: "keys-title" }, "Keys"), errorBox(error));
    }
  }

  function keyRow(key) {
    const id = encodeURIComponent(key.id);
    const inUse = Boolean(key.prefix) && (ctx.keyInUse() || "").startsWith(`${key.prefix}_`);
    const rollHours = h("input", { type: "number", min: 0, max: 8784, value: 24, class: "roll-hours", "aria-label": `Hours the old key ${key.name || key.prefix} keeps working` });
    const roll = confirming("Roll", ["A new secret; the old one keeps working for ", rollHours, " hours (0: it stops now)."], "Roll", async () => {
      try {
        const rolled = await api.post(`/v1/api-keys/${id}/roll`, { expires_in_hours: Number(rollHours.value || 0) });
        secretOnce(secretSlot, `The new secret of "${rolled.name || "key"}"`, rolled.secret,
          "The old key keeps working until the expiry listed below, then answers 401.");
        await load();
      } catch (error) {
        replace(secretSlot, errorBox(error));
      }
    });
    const revoke = confirming("Revoke", inUse ? "This console uses this key: revoking it logs you out. Revoke?" : "Revoke it? It stops working at once.",
      "Revoke", async () => {
        try {
          await api.del(`/v1/api-keys/${id}`);
          announce(ctx.live, "Key revoked.");
          await load();
        } catch (error) {
          replace(secretSlot, errorBox(error));
        }
      }, { danger: true });
    return h("li", { class: "card api-key", dataset: { id: key.id, prefix: key.prefix || "" } },
      h("h4", { class: "key-name" }, key.name || "(unnamed)"),
      inUse ? h("p", { class: "hint" }, "This console's key") : null,
      facts([
        ["Prefix", key.prefix ? h("code", {}, key.prefix) : "—"],
        ["Scopes", key.scopes ? key.scopes.join(", ") : "every scope"],
        ["Last used", key.last_used_at ? when(key.last_used_at) : "never"],
        ["Expires", expiry(key)],
        ["Made", when(key.created_at)],
      ]),
      h("div", { class: "row" }, roll, revoke));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const body = { name: name.value.trim(), scopes: chosen(scopes, "scope") };
      if (!body.scopes.length) {
        throw new ApiError(422, { detail: "Choose at least one scope.", errors: { scopes: ["Choose at least one scope."] } });
      }
      if (hours.value.trim()) {
        const n = Number(hours.value.trim());
        if (!Number.isInteger(n)) {
          throw new ApiError(422, { detail: "Give whole hours.", errors: { expires_in_hours: ["A whole number of hours, or empty."] } });
        }
        body.expires_in_hours = n;
      }
      const created = await api.post("/v1/api-keys", body);
      name.value = "";
      hours.value = "";
      secretOnce(secretSlot, `Your new key "${created.name}"`, created.secret,
        "Send it as Authorization: Bearer … from your servers; keep it out of browsers and code repositories.");
      announce(ctx.live, "Key made. Copy it now.");
      await load();
    });
  });
  await load();
}

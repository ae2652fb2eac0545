// The console's workforce pages (admins; the bonus form also for a brand on its own briefs):
// workers with their reputation, fraud signals and suspensions, the appeals queue, one-off
// bonuses and the audit log. Only the public API is used, and data is only ever set as text.
import {
  ApiError, announce, field, h, humanize, money, parseAmount, replace, submitting, when, banner, errorBox, option,
} from "./common.js";

const PAGE = 50;
let api;
let main;
let live;

// console.js hands over its API client and regions and gets the views back, keyed by the hash's
// first part (#workers, #worker/wrk_…, #appeals, #bonus[/wrk_…], #audit[/subject]).
export function workforceViews(context) {
  ({ api, main, live } = context);
  return { workers: renderWorkers, worker: renderWorker, appeals: renderAppeals, bonus: renderBonus, audit: renderAudit };
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(Number(rate) * 100)}%`;
}

// "3 d 4 h", "2 h 5 min", "12 min", "40 s": how long something has waited.
export function age(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400), hrs = Math.floor((s % 86400) / 3600), min = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hrs} h`;
  if (hrs) return `${hrs} h ${min} min`;
  if (min) return `${min} min`;
  return `${s} s`;
}

function workerLink(id, name) {
  return h("a", { href: `#worker/${encodeURIComponent(id)}` }, name || id);
}

function required(input, message) {
  const value = input.value.trim();
  if (!value) throw new ApiError(422, { detail: message, errors: { [input.name]: [message] } });
  return value;
}

// A table that pages with the API's cursor: "Load more" appends the next page.
function pagedTable({ id, caption, headings, fetchPage, row, empty }) {
  const tbody = h("tbody", {});
  const table = h("div", { class: "table-wrap" }, h("table", { id },
    caption ? h("caption", { class: "hint" }, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((x) => h("th", { class: x.startsWith("#") ? "num" : "" }, x.replace(/^#/, ""))))),
    tbody));
  const more = h("button", { type: "button", class: "secondary", id: `${id}-more`, hidden: true }, "Load more");
  let cursor = null;
  let latest = 0;
  let count = 0;
  async function load(reset) {
    const mine = ++latest;
    if (reset) { cursor = null; count = 0; }
    more.disabled = true;
    try {
      const page = await fetchPage(cursor);
      if (mine !== latest) return;
      if (reset) tbody.replaceChildren();
      const rows = page.data || [];
      count += rows.length;
      for (const item of rows) tbody.append(row(item));
      if (!count) tbody.append(h("tr", {}, h("td", { colspan: headings.length }, empty)));
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
    } catch (error) {
      if (mine === latest) replace(tbody, h("tr", {}, h("td", { colspan: headings.length }, errorBox(error))));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => load(false));
  return { element: h("div", {}, table, more), load };
}

// ---- workers -------------------------------------------------------------------------------

const workerFilter = { q: "", status: "" };

async function renderWorkers() {
  const q = h("input", { id: "workers-q", name: "q", type: "search", value: workerFilter.q, autocomplete: "off" });
  const status = h("select", { id: "workers-status", name: "status" }, option("", "Any status", workerFilter.status),
    option("active", "Active", workerFilter.status), option("suspended", "Suspended", workerFilter.status));
  const filters = h("form", { class: "filters card", id: "workers-filters", role: "search" }, banner(),
    field("Name or e-mail", q), field("Status", status),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Search")));
  const list = pagedTable({
    id: "workers", caption: "Newest first", empty: "No worker matches.",
    headings: ["Worker", "Status", "Approval rate", "#Approved", "#Rejected", "On time", "#Signals", "Joined"],
    fetchPage: (cursor) => api.get("/v1/workers", { q: workerFilter.q, status: workerFilter.status, limit: PAGE, cursor }),
    row: (w) => {
      const r = w.reputation || {};
      return h("tr", { dataset: { id: w.id }, class: w.status === "suspended" ? "has-failure" : "" },
        h("td", {}, workerLink(w.id, w.display_name), h("div", { class: "hint" }, w.email || ""), h("div", { class: "hint" }, w.id)),
        h("td", {}, w.status === "suspended" ? h("strong", { class: "badge outcome-fail" }, "suspended") : "active"),
        h("td", { class: "num" }, percent(r.approval_rate)),
        h("td", { class: "num" }, String(r.approved ?? 0)),
        h("td", { class: "num" }, String((r.rejected ?? 0) + (r.auto_rejected ?? 0))),
        h("td", { class: "num" }, percent(r.on_time_rate)),
        h("td", { class: "num" }, w.signal_count ? h("strong", { class: "badge outcome-warn" }, String(w.signal_count)) : "0"),
        h("td", {}, when(w.created_at)));
    },
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    workerFilter.q = q.value.trim();
    workerFilter.status = status.value;
    list.load(true);
  });
  replace(main, h("h2", {}, "Workers"), filters, list.element);
  await list.load(true);
}

// A view that waited for the API draws only if the console is still on its page: a click
// elsewhere meanwhile has drawn another view, which a late answer must not cover.
function moved(hash) {
  return location.hash !== hash;
}

async function renderWorker(id) {
  const here = location.hash;
  const w = await api.get(`/v1/workers/${encodeURIComponent(id)}`);
  if (moved(here)) return;
  const r = w.reputation || {};
  const s = w.signals || {};
  const suspended = w.status === "suspended";
  const balances = w.balances || [];
  const history = w.suspensions || [];
  const shared = s.shared_device_workers || [];
  replace(main,
    h("h2", {}, w.display_name || w.id),
    h("p", { class: "hint" }, w.id, " · ", w.email || "", w.country ? ` · ${w.country}` : "",
      (w.languages || []).length ? ` · ${(w.languages || []).join(", ")}` : ""),
    h("p", { id: "worker-status" }, "Status: ", suspended ? h("strong", { class: "badge outcome-fail", dataset: { status: "suspended" } }, "suspended")
      : h("strong", { dataset: { status: "active" } }, "active"),
    suspended && w.suspension ? ` since ${when(w.suspension.suspended_at)} — ${w.suspension.reason}` : ""),
    (w.social_accounts || []).length ? h("p", {}, (w.social_accounts || []).map((a) => `${humanize(a.platform)} ${a.handle}`).join(" · ")) : null,
    h("h3", {}, "Reputation"),
    h("div", { class: "grid", id: "worker-reputation" },
      stat("Approval rate", percent(r.approval_rate)), stat("Approved", String(r.approved ?? 0)),
      stat("Rejected", String(r.rejected ?? 0)), stat("Auto-rejected", String(r.auto_rejected ?? 0)),
      stat("On time", percent(r.on_time_rate)), stat("Appeals won", String(r.appeals_won ?? 0)),
      stat("Since", when(r.since || w.created_at))),
    h("h3", {}, "Balances"),
    balances.length ? h("div", { class: "table-wrap" }, h("table", { id: "worker-balances" },
      h("thead", {}, h("tr", {}, ...["Currency", "Available", "Held", "In transit", "Paid"].map((x, i) => h("th", { class: i ? "num" : "" }, x)))),
      h("tbody", {}, balances.map((b) => h("tr", {}, h("td", {}, String(b.currency || "").toUpperCase()),
        h("td", { class: "num" }, money(b.available_cents, b.currency)),
        h("td", { class: "num" }, b.held_cents ? h("strong", {}, money(b.held_cents, b.currency)) : money(0, b.currency)),
        h("td", { class: "num" }, money(b.in_transit_cents, b.currency)),
        h("td", { class: "num" }, money(b.paid_cents, b.currency)))))))
      : h("p", { class: "hint", id: "worker-balances" }, "No earnings yet."),
    h("h3", {}, "Fraud signals"),
    h("ul", { id: "worker-signals" },
      h("li", {}, shared.length ? [`Shares a device with ${shared.length} other worker${shared.length === 1 ? "" : "s"}: `,
        shared.map((other, i) => [i ? ", " : "", workerLink(other)])] : "Shares no device with another worker."),
      h("li", {}, `Duplicate proof caught: ${s.duplicate_proof_caught ?? 0}`),
      h("li", {}, `Submissions in the last hour: ${s.submissions_last_hour ?? 0} (median worker: ${s.median_submissions_last_hour ?? 0})`)),
    h("h3", {}, "Suspensions"),
    history.length ? h("div", { class: "table-wrap" }, h("table", { id: "worker-suspensions" },
      h("thead", {}, h("tr", {}, h("th", {}, "Suspended"), h("th", {}, "Why"), h("th", {}, "Reinstated"), h("th", {}, "Why"))),
      h("tbody", {}, history.map((x) => h("tr", {},
        h("td", {}, when(x.suspended_at), h("div", { class: "hint" }, x.suspended_by || "")),
        h("td", { class: "proof-text" }, x.reason || ""),
        h("td", {}, x.reinstated_at ? [when(x.reinstated_at), h("div", { class: "hint" }, x.reinstated_by || "")] : "—"),
        h("td", { class: "proof-text" }, x.reinstate_reason || ""))))))
      : h("p", { class: "hint", id: "worker-suspensions" }, "Never suspended."),
    standingForm(w),
    h("p", { class: "row" },
      h("a", { class: "button secondary", href: `#bonus/${encodeURIComponent(w.id)}` }, "Pay a bonus"),
      h("a", { class: "button secondary", href: `#audit/${encodeURIComponent(w.id)}` }, "Audit log of this worker")));
}

// Suspend an active worker, or reinstate a suspended one: a reason is required either way.
function standingForm(w) {
  const suspended = w.status === "suspended";
  const verb = suspended ? "reinstate" : "suspend";
  const reason = h("textarea", { id: "standing-reason", name: "reason", rows: 2, maxlength: 500, required: true });
  const form = h("form", { class: "card", id: "standing-form", novalidate: true },
    h("h3", {}, suspended ? "Reinstate" : "Suspend"), banner(),
    h("p", { class: "hint" }, suspended
      ? "They may log in, claim and submit again, and what the suspension held returns to their available balance."
      : "They can no longer log in, claim or submit; their claims waiting for proof end and their available balance is held."),
    field("Reason", reason, "Kept in the suspension's history and the audit log."),
    h("button", { type: "submit", class: suspended ? "" : "danger", id: `${verb}-worker` }, suspended ? "Reinstate worker" : "Suspend worker"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const why = required(reason, "Say why: the reason is kept in the audit log.");
      await api.post(`/v1/workers/${encodeURIComponent(w.id)}/${verb}`, { reason: why });
      announce(live, suspended ? "Worker reinstated" : "Worker suspended");
      await renderWorker(w.id);
    });
  });
  return form;
}

// ---- appeals -------------------------------------------------------------------------------

const appealFilter = { status: "open" };

async function renderAppeals() {
  const status = h("select", { id: "appeals-status", name: "status" }, option("open", "Open", appealFilter.status),
    option("upheld", "Upheld", appealFilter.status), option("overturned", "Overturned", appealFilter.status),
    option("", "Any status", appealFilter.status));
  const filters = h("form", { class: "filters card", id: "appeals-filters", role: "search" },
    field("Status", status), h("div", { class: "field" }, h("button", { type: "submit" }, "Show")));
  const list = h("div", { id: "appeals" });
  const more = h("button", { type: "button", class: "secondary", id: "appeals-more", hidden: true }, "Load more");
  let cursor = null;
  let latest = 0;
  async function load(reset) {
    const mine = ++latest;
    if (reset) cursor = null;
    try {
      // One request a page: each appeal carries its submission's evidence, its brief and its worker.
      const page = await api.get("/v1/appeals", { status: appealFilter.status, limit: 20, cursor });
      if (mine !== latest) return;
      if (reset) list.replaceChildren();
      for (const a of page.data || []) list.append(appealCard(a));
      if (!list.children.length) list.append(h("p", { class: "hint" }, appealFilter.status === "open" ? "No appeal is waiting." : "No appeals."));
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
    } catch (error) {
      if (mine === latest) replace(list, errorBox(error));
    }
  }
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    appealFilter.status = status.value;
    load(true);
  });
  more.addEventListener("click", () => load(false));
  replace(main, h("h2", {}, "Appeals"), h("p", { class: "hint" }, "Oldest first: the longest waiting is decided first."), filters, list, more);
  await load(true);
}

function evidence(sub) {
  if (!sub) return h("p", { class: "form-error" }, "The appealed submission was not sent with the appeal.");
  const failed = (sub.checks || []).filter((c) => c.outcome !== "pass");
  const reasons = sub.reasons || [];
  return h("div", { class: "evidence" },
    h("p", {}, "Rejected as ", h("strong", { class: "reason-code" }, sub.reason_code ? humanize(sub.reason_code) : humanize(sub.status)),
      sub.decided_at ? ` on ${when(sub.decided_at)}` : "", ` · now ${humanize(sub.status)}`),
    sub.reason ? h("p", {}, "Reviewer: ", h("span", { class: "proof-text reviewer-reason" }, sub.reason)) : null,
    reasons.length ? h("ul", { class: "plain checks" }, reasons.map((x) => h("li", {}, h("span", { class: "badge outcome-fail" }, humanize(x.check || "check")), " ", String(x.detail || "")))) : null,
    !reasons.length && failed.length ? h("ul", { class: "plain checks" }, failed.map((c) => h("li", {}, h("span", { class: `badge outcome-${c.outcome}` }, humanize(c.name)), " ", c.detail || ""))) : null,
    sub.text ? h("p", {}, "Proof: ", h("span", { class: "proof-text" }, sub.text)) : null,
    sub.link ? h("p", { class: "link-cell" }, "Link: ", sub.link) : null);
}

function appealCard(a) {
  const sub = a.submission;
  const card = h("article", { class: "card appeal", dataset: { id: a.id, status: a.status } });
  const heading = h("h3", {}, `Appeal ${a.id}`);
  const facts = h("p", { class: "hint" }, "Waiting ", h("strong", { class: "age" }, age(a.age_seconds)), ` · made ${when(a.created_at)} · by `,
    workerLink(a.worker_id, a.worker?.display_name), ` · submission ${a.submission_id} · brief `,
    h("span", { class: "brief-title" }, a.brief?.title || a.brief_id), a.brief?.title ? ` (${a.brief_id})` : "");
  const message = h("blockquote", { class: "proof-text appeal-message" }, a.message || "");
  if (a.status !== "open") {
    return replace(card, heading, facts, evidence(sub), h("p", {}, "The worker wrote:"), message,
      h("p", { class: "decided" }, h("strong", {}, humanize(a.status)), ` ${when(a.decided_at)} by ${a.decided_by || ""}: `, a.decision_reason || ""));
  }
  const reason = h("textarea", { id: `decision-reason-${a.id}`, name: "reason", rows: 2, maxlength: 1000, required: true });
  const uphold = h("button", { type: "button", class: "secondary", dataset: { decision: "uphold" } }, "Uphold rejection");
  const overturn = h("button", { type: "button", dataset: { decision: "overturn" } }, "Overturn and approve");
  const form = h("form", { class: "appeal-decision", novalidate: true }, banner(),
    field("Reason", reason, "Shown to the worker and kept in the audit log."), h("div", { class: "row" }, uphold, overturn));
  const decide = (decision) => {
    if (uphold.disabled) return; // one decision at a time
    uphold.disabled = overturn.disabled = true;
    submitting(form, async () => {
      const why = required(reason, "Say why: the worker sees the reason.");
      try {
        const decided = await api.post(`/v1/appeals/${encodeURIComponent(a.id)}/decision`, { decision, reason: why });
        announce(live, `Appeal ${humanize(decided.status)}`);
        card.replaceWith(appealCard(decided)); // the answer carries the submission as the decision left it
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) {
          throw new ApiError(409, { detail: `Could not ${decision} this appeal: ${error.message}` });
        }
        throw error;
      }
    }).finally(() => { uphold.disabled = overturn.disabled = false; });
  };
  uphold.addEventListener("click", () => decide("uphold"));
  overturn.addEventListener("click", () => decide("overturn"));
  form.addEventListener("submit", (event) => event.preventDefault());
  return replace(card, heading, facts, evidence(sub), h("p", {}, "The worker wrote:"), message, form);
}

// ---- bonuses -------------------------------------------------------------------------------

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function renderBonus(workerId) {
  const here = location.hash;
  let briefs = [];
  try {
    briefs = (await api.get("/v1/briefs", { limit: 500 })).data || [];
  } catch (error) { /* the select stays empty; the POST's answer says why */ }
  if (moved(here)) return;
  const running = briefs.filter((b) => b.status === "live" || b.status === "paused");
  const brief = h("select", { id: "bonus-brief", name: "brief_id" }, option("", "Choose a brief"),
    running.map((b) => option(b.id, `${b.title} (${humanize(b.status)})`)));
  const worker = h("input", { id: "bonus-worker", name: "worker_id", value: workerId || "", autocomplete: "off", spellcheck: "false" });
  const amount = h("input", { id: "bonus-amount", name: "amount_cents", inputmode: "decimal", autocomplete: "off" });
  const reason = h("textarea", { id: "bonus-reason", name: "reason", rows: 2, maxlength: 500 });
  const spare = h("p", { class: "hint", id: "bonus-unspent", "aria-live": "polite" });
  const preview = h("p", { class: "hint", id: "bonus-preview", "aria-live": "polite" });
  const result = h("div", { id: "bonus-result", "aria-live": "polite" });
  const form = h("form", { class: "card", id: "bonus-form", novalidate: true },
    h("h2", {}, "Pay a one-off bonus"),
    h("p", {}, "Paid from the brief's unspent escrow to a worker with approved work on it; the next payout batch pays it out."),
    banner(), field("Brief", brief), spare, field("Worker id", worker, "wrk_…, from the worker's page or the brief's report."),
    field("Amount", amount, "In the brief's currency, e.g. 5.00."), preview,
    field("Reason", reason, "Shown to the worker with the bonus."),
    h("button", { type: "submit" }, "Pay bonus"), result);
  const currencyOf = () => (briefs.find((b) => b.id === brief.value) || {}).currency || "usd";

  // One Idempotency-Key per bonus meant: made for the first submission of what the form holds,
  // and kept while that request is unanswered (a second click joins it; a retry after a lost
  // answer resends it, so the server replays the first payment instead of paying again). An
  // edit of the form, a payment or a refusal by the server ends it.
  let attempt = null;
  const forget = () => { attempt = null; };
  for (const input of [brief, worker, amount, reason]) input.addEventListener("input", forget);
  brief.addEventListener("change", forget);

  amount.addEventListener("input", () => {
    const cents = parseAmount(amount.value);
    preview.textContent = cents === null ? "" : `${money(cents, currencyOf())} (${cents} in minor units)`;
  });
  brief.addEventListener("change", async () => {
    spare.textContent = "";
    if (!brief.value) return;
    const chosen = brief.value;
    try {
      const u = await api.get(`/v1/briefs/${encodeURIComponent(chosen)}/unspent`);
      if (chosen === brief.value) spare.textContent = `This brief can spare ${money(u.unspent_cents, u.currency)}.`;
    } catch (error) {
      if (chosen === brief.value) spare.textContent = error.message;
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (attempt && attempt.pending) return; // a double click: the first request is still out
    submitting(form, async () => {
      const errors = {};
      if (!brief.value) errors.brief_id = ["Choose a brief."];
      if (!worker.value.trim()) errors.worker_id = ["Enter the worker's id (wrk_…)."];
      const cents = parseAmount(amount.value);
      if (cents === null || cents < 1) errors.amount_cents = ["Enter an amount such as 5.00."];
      if (!reason.value.trim()) errors.reason = ["Say why: the worker sees it."];
      if (Object.keys(errors).length) throw new ApiError(422, { detail: "Please correct the fields marked below.", errors });
      const body = { brief_id: brief.value, worker_id: worker.value.trim(), amount_cents: cents, reason: reason.value.trim() };
      if (!attempt) attempt = { key: newKey() };
      const mine = attempt;
      mine.pending = true;
      let bonus;
      try {
        bonus = await api.post("/v1/bonuses", body, { idempotencyKey: mine.key });
      } catch (error) {
        // No answer, or "still being processed": the same key must go again. Any other answer
        // is final (the server keeps it under the key): the next try is a new request.
        const unanswered = error instanceof ApiError && (error.status === 0 || error.status >= 500
          || (error.status === 409 && /still being processed/.test(error.message)));
        if (!unanswered && attempt === mine) attempt = null;
        throw error;
      } finally {
        mine.pending = false;
      }
      if (attempt === mine) attempt = null;
      amount.value = "";
      reason.value = "";
      preview.textContent = "";
      replace(result, h("p", { class: "notice", id: "bonus-paid", dataset: { id: bonus.id } },
        `Paid ${money(bonus.amount_cents, bonus.currency)} to ${bonus.worker_name || bonus.worker_id}: `, bonus.reason || "", ` (${bonus.id})`));
      announce(live, "Bonus paid");
      brief.dispatchEvent(new Event("change")); // the escrow it can spare now
      recent.load(true);
    });
  });

  const recent = pagedTable({
    id: "bonuses", caption: "Newest first", empty: "No bonuses yet.",
    headings: ["When", "Worker", "#Amount", "Kind", "Reason", "By"],
    fetchPage: (cursor) => api.get("/v1/bonuses", { worker: workerId || undefined, limit: 20, cursor }),
    row: (b) => h("tr", { dataset: { id: b.id } }, h("td", {}, when(b.created_at)),
      h("td", {}, workerLink(b.worker_id, b.worker_name), h("div", { class: "hint" }, b.brief_id)),
      h("td", { class: "num" }, money(b.amount_cents, b.currency)), h("td", {}, humanize(b.kind)),
      h("td", { class: "proof-text" }, b.reason || ""), h("td", { class: "hint" }, b.created_by || "")),
  });
  replace(main, form, h("h3", {}, workerId ? "This worker's bonuses" : "Recent bonuses"), recent.element);
  await recent.load(true);
}

// ---- audit log -----------------------------------------------------------------------------

const auditFilter = { actor: "", action: "", subject: "" };

function detailText(detail) {
  return Object.entries(detail || {}).map(([k, v]) => `${humanize(k)}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`);
}

async function renderAudit(subject) {
  auditFilter.subject = subject || ""; // #audit/wrk_… is one record's log; #audit, everyone's
  const inputs = ["actor", "action", "subject"].map((name) => h("input", { id: `audit-${name}`, name, value: auditFilter[name], autocomplete: "off", spellcheck: "false" }));
  const [actor, action, subj] = inputs;
  const filters = h("form", { class: "filters card", id: "audit-filters", role: "search" },
    field("Who", actor, "admin:adm_…, brand:brand_…"), field("What", action, "worker.suspended, or appeal.*"),
    field("Subject", subj, "wrk_…, sub_…, apl_…"), h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")));
  const log = pagedTable({
    id: "audit", caption: "Newest first; the log cannot be edited", empty: "No events match.",
    headings: ["When", "Who", "What", "Subject", "Why", "Detail"],
    fetchPage: (cursor) => api.get("/v1/audit-events", { ...auditFilter, limit: PAGE, cursor }),
    row: (e) => h("tr", { dataset: { id: e.id, action: e.action } },
      h("td", {}, when(e.created_at)), h("td", { class: "link-cell" }, e.actor || ""),
      h("td", {}, e.action || ""),
      h("td", { class: "link-cell" }, String(e.subject || "").startsWith("wrk_") ? workerLink(e.subject) : e.subject || ""),
      h("td", { class: "proof-text" }, e.reason || ""),
      h("td", {}, h("ul", { class: "plain hint" }, detailText(e.detail).map((line) => h("li", {}, line))))),
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const input of inputs) auditFilter[input.name] = input.value.trim();
    log.load(true);
  });
  replace(main, h("h2", {}, "Audit log"), filters, log.element);
  await log.load(true);
}

// The admin console (an admin key, or a brand key for the brand's own briefs): the review queue
// with bulk decisions by filter, briefs with their money and counts, reports with a chart, the
// content bank CSV, and payout batches with their progress. Only the public API is used.
import {
  ApiError, announce, apiClient, credential, field, h, humanize, money, outcomeBadge, parseAmount, goTo, replace, safeLink, submitting, svg, when, banner, errorBox, option,
} from "./common.js";
import { workforceViews } from "./console_workforce.js";
import { brandIntegration } from "./console_integration.js";

const STATUSES = ["validating", "needs_review", "auto_rejected", "approved", "rejected", "revision_requested", "paid"];
const REASONS = ["duplicate", "off_brief", "missing_disclosure", "broken_link", "low_quality", "other"];
const PAGE = 50;

const key = credential("console.key");
// A key that stops working (revoked) sends the console back to its log-in; a key being tried
// at log-in is refused in the form instead.
const api = apiClient(key, () => { if (me) { key.clear(); me = null; show(); } });
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");
let me = null;
let stops = [];
let blobUrls = [];
const review = { brief: "", status: "needs_review", check: "" }; // the queue's filter, kept across views

function stopAll() {
  for (const stop of stops) stop();
  stops = [];
  for (const url of blobUrls) URL.revokeObjectURL(url);
  blobUrls = [];
}

// For a view that waits for the API before drawing: true once another view has been shown, so a
// slow answer does not draw the old view over the new one.
function leftView() {
  let left = false;
  stops.push(() => { left = true; });
  return () => left;
}

// ---- routing and log-in --------------------------------------------------------------------

async function show() {
  stopAll();
  if (!key.get()) return renderLogin();
  if (!me) {
    try {
      me = await api.get("/v1/me");
    } catch (error) {
      key.clear();
      return renderLogin(error);
    }
  }
  nav.hidden = false;
  document.getElementById("nav-payouts").hidden = me.role !== "admin";
  for (const link of nav.querySelectorAll("[data-admin-only]")) link.hidden = me.role !== "admin";
  const [view, arg] = (location.hash.replace(/^#/, "") || "review").split("/");
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const views = { review: renderReview, briefs: renderBriefs, brief: renderBrief, payouts: renderPayouts, payout: renderPayout };
  Object.assign(views, workforceViews({ api, main, live }));
  Object.assign(views, brandIntegration({ api, main, live, me, onStop: (stop) => stops.push(stop), keyInUse: () => key.get() }));
  try {
    await (views[view] || renderReview)(arg && decodeURIComponent(arg));
  } catch (error) {
    replace(main, h("h2", {}, "Something went wrong"), errorBox(error));
  }
}

window.addEventListener("hashchange", show);
document.getElementById("log-out").addEventListener("click", () => {
  key.clear();
  me = null;
  goTo("", show);
});

function renderLogin(error) {
  nav.hidden = true;
  const input = h("input", { id: "api-key", name: "api_key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "card", id: "login-form", novalidate: true },
    h("h2", {}, "Log in"), banner(),
    field("API key", input, "An admin key (from flask create-admin) or your brand's API key."),
    h("button", { type: "submit" }, "Log in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      key.set(input.value.trim());
      try {
        const who = await api.get("/v1/me");
        if (who.role !== "admin" && who.role !== "brand") {
          throw new ApiError(403, { detail: "The console takes an admin or brand key; workers use the app.", errors: { api_key: ["Not an admin or brand key."] } });
        }
        me = who;
      } catch (err) {
        key.clear();
        if (err.status === 401) throw new ApiError(401, { detail: "That key was not accepted.", errors: { api_key: ["That key was not accepted."] } });
        throw err;
      }
      goTo("#review", show);
    });
  });
  replace(main, form);
  if (error) form.querySelector(".form-error").textContent = error.message;
}

// ---- review queue --------------------------------------------------------------------------

async function briefOptions() {
  try {
    const page = await api.get("/v1/briefs", { limit: 500 });
    return page.data || [];
  } catch (error) {
    return [];
  }
}

// The queue's check filter: "all_pass" is all_checks=pass; anything else is the API's check=
// syntax (OUTCOME or NAME:OUTCOME).
function checkParams() {
  if (review.check === "all_pass") return { all_checks: "pass" };
  return review.check ? { check: review.check } : {};
}

function queueQuery() {
  return { brief: review.brief, status: review.status, ...checkParams() };
}

// What "everything matching the filter" means to the decisions endpoint, which decides only
// needs_review submissions: offered only while the queue shows that status.
function decisionFilter() {
  const filter = { status: "needs_review", ...checkParams() };
  if (review.brief) filter.brief = review.brief;
  return filter;
}

async function renderReview() {
  const left = leftView();
  const briefs = await briefOptions();
  if (left()) return;
  const briefSelect = h("select", { id: "filter-brief", name: "brief" }, option("", "All briefs", review.brief),
    briefs.map((b) => option(b.id, b.title, review.brief)));
  const statusSelect = h("select", { id: "filter-status", name: "status" }, option("", "Any status", review.status),
    STATUSES.map((s) => option(s, humanize(s), review.status)));
  const checkSelect = h("select", { id: "filter-check", name: "check" },
    option("", "Any check outcome", review.check), option("all_pass", "All checks passed", review.check),
    option("fail", "A check failed", review.check), option("warn", "A check warned", review.check),
    ["screenshot", "timestamp", "link", "text"].map((name) => option(`${name}:fail`, `The ${name} check failed`, review.check)));
  const filters = h("form", { class: "filters card", id: "review-filters", role: "search" }, banner(),
    field("Brief", briefSelect), field("Status", statusSelect), field("Checks", checkSelect),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Apply filter")));

  const state = { rows: [], cursor: null, selected: new Set(), allMatching: false, total: null };
  const selectionBar = h("div", { class: "selection-bar", id: "selection-bar", "aria-live": "polite" });
  const tbody = h("tbody", {});
  const pageBox = h("input", { type: "checkbox", id: "select-page", "aria-label": "Select every row on this page" });
  const table = h("div", { class: "table-wrap" }, h("table", { id: "queue" },
    h("caption", { class: "hint" }, "Submissions matching the filter, newest first"),
    h("thead", {}, h("tr", {}, h("th", {}, pageBox), h("th", {}, "Screenshot"), h("th", {}, "Text"),
      h("th", {}, "Link"), h("th", {}, "Checks"), h("th", {}, "Status"), h("th", {}, "Submitted"))),
    tbody));
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more");
  const decisionForm = decisionPanel(state, () => load(true));

  replace(main, h("h2", {}, "Review queue"), filters, decisionForm, selectionBar, table, more);

  function renderSelection() {
    const n = state.allMatching ? null : state.selected.size;
    pageBox.checked = state.rows.length > 0 && (state.allMatching || state.rows.every((r) => state.selected.has(r.id)));
    for (const box of tbody.querySelectorAll("input[type=checkbox]")) {
      box.checked = state.allMatching || state.selected.has(box.value);
      box.disabled = state.allMatching;
    }
    const parts = [];
    if (state.allMatching) {
      parts.push(h("strong", {}, state.total !== null ? `All ${state.total} submissions matching this filter are selected.`
        : "Every submission matching this filter is selected, including those not loaded yet."), " ",
      h("button", { type: "button", class: "secondary", id: "clear-selection", onclick: () => { state.allMatching = false; state.selected.clear(); renderSelection(); } }, "Clear selection"));
    } else {
      parts.push(`${n} selected. `);
      if (pageBox.checked && review.status === "needs_review" && (state.cursor || state.total === null || state.total > state.rows.length)) {
        parts.push(h("button", { type: "button", class: "secondary", id: "select-all-matching", onclick: () => { state.allMatching = true; renderSelection(); } },
          state.total !== null ? `Select all ${state.total} matching this filter` : "Select all matching this filter"));
      }
    }
    replace(selectionBar, parts);
    decisionForm.querySelector("#decision-count").textContent = state.allMatching
      ? "Applies to every submission matching the filter." : `Applies to ${n} selected submission${n === 1 ? "" : "s"}.`;
  }
  state.renderSelection = renderSelection;
  state.decisionFilter = decisionFilter;

  pageBox.addEventListener("change", () => {
    state.allMatching = false;
    for (const row of state.rows) {
      if (pageBox.checked) state.selected.add(row.id);
      else state.selected.delete(row.id);
    }
    renderSelection();
  });

  let latest = 0; // a slow answer to an older filter must not land in the table of a newer one
  async function load(reset) {
    const mine = ++latest;
    if (reset) {
      state.rows = [];
      state.cursor = null;
      state.selected.clear();
      state.allMatching = false;
      tbody.replaceChildren();
    }
    try {
      const page = await api.get("/v1/review/submissions", { ...queueQuery(), limit: PAGE, cursor: state.cursor });
      if (mine !== latest) return;
      const rows = page.data || [];
      state.rows.push(...rows);
      state.cursor = page.next_cursor || null;
      state.total = page.total ?? page.total_count ?? (state.cursor ? null : state.rows.length);
      for (const row of rows) tbody.append(queueRow(row, state));
      if (!state.rows.length) tbody.append(h("tr", {}, h("td", { colspan: 7 }, "Nothing matches this filter.")));
      more.hidden = !state.cursor;
      renderSelection();
    } catch (error) {
      if (mine === latest) replace(tbody, h("tr", {}, h("td", { colspan: 7 }, errorBox(error))));
    }
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    review.brief = briefSelect.value;
    review.status = statusSelect.value;
    review.check = checkSelect.value;
    load(true);
  });
  more.addEventListener("click", () => load(false));
  await load(true);
}

function queueRow(row, state) {
  const checks = row.checks || [];
  const failed = checks.some((c) => c.outcome === "fail");
  const box = h("input", { type: "checkbox", value: row.id, "aria-label": `Select submission ${row.id}` });
  box.addEventListener("change", () => {
    if (box.checked) state.selected.add(row.id);
    else state.selected.delete(row.id);
    state.renderSelection();
  });
  const thumbCell = h("td", {}, h("span", { class: "hint" }, "—"));
  if (row.screenshot_url) loadThumbnail(thumbCell, row);
  return h("tr", { class: failed ? "has-failure" : "", dataset: { id: row.id } },
    h("td", {}, box),
    thumbCell,
    h("td", {}, h("div", { class: "proof-text" }, row.text || "")),
    h("td", { class: "link-cell" }, row.link ? safeLink(row.link) : ""),
    h("td", {}, failed ? h("strong", { class: "badge outcome-fail" }, "Failed check") : null,
      h("ul", { class: "plain checks" }, checks.map((c) => h("li", { title: c.detail || "" },
        outcomeBadge(c.outcome), " ", humanize(c.name), c.outcome !== "pass" && c.detail ? `: ${c.detail}` : "")))),
    h("td", {}, humanize(row.status), row.reason_code ? h("div", { class: "hint" }, humanize(row.reason_code)) : null,
      row.group ? h("div", { class: "hint" }, humanize(row.group.kind), row.group.name ? ` · ${row.group.name}` : "") : null,
      row.worker ? h("div", { class: "hint" }, row.worker.display_name) : null),
    h("td", {}, when(row.submitted_at || row.created_at)));
}

// Screenshots are fetched with the Authorization header and shown from blob: URLs, so the key
// never appears in a URL (an <img src> could not send the header).
async function loadThumbnail(cell, row) {
  const path = typeof row.screenshot_url === "string" && row.screenshot_url.startsWith("/")
    ? row.screenshot_url : `/v1/submissions/${encodeURIComponent(row.id)}/screenshot`;
  // A thumbnail the server re-encodes: small, and an upload that is no image answers 422, shown
  // as "No preview" in a cell of its usual size rather than a broken image stretching the table.
  const noPreview = (title) => replace(cell, h("span", { class: "hint no-preview", title: title || "" }, "No preview"));
  try {
    const blob = await api.blob(path, { size: "thumbnail" });
    const url = URL.createObjectURL(blob);
    blobUrls.push(url);
    const img = h("img", { class: "thumb", src: url, alt: "Screenshot" });
    img.addEventListener("error", () => noPreview());
    replace(cell, img);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) replace(cell, h("span", { class: "hint" }, "No screenshot"));
    else noPreview(error && error.message);
  }
}

function decisionPanel(state, reload) {
  const decision = h("select", { id: "decision", name: "decision" },
    option("approve", "Approve"), option("reject", "Reject"), option("request_revision", "Ask for a revision"));
  const reasonCode = h("select", { id: "reason-code", name: "reason_code" }, option("", "Choose a reason"),
    REASONS.map((r) => option(r, humanize(r))));
  const reason = h("textarea", { id: "reason", name: "reason", rows: 2 });
  const reasonFields = h("div", { hidden: true }, field("Reason", reasonCode), field("Note to the worker", reason));
  const result = h("div", { id: "decision-result", "aria-live": "polite" });
  const form = h("form", { class: "card", id: "decision-form", novalidate: true },
    h("h3", {}, "Decide"), banner(),
    h("p", { id: "decision-count", class: "hint" }, "Select submissions below."),
    field("Decision", decision), reasonFields,
    h("button", { type: "submit" }, "Apply decision"), result);
  decision.addEventListener("change", () => { reasonFields.hidden = decision.value === "approve"; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const body = { decision: decision.value };
      if (state.allMatching) body.filter = state.decisionFilter();
      else body.submission_ids = [...state.selected];
      if (!state.allMatching && !body.submission_ids.length) {
        throw new ApiError(422, { detail: "Select at least one submission first." });
      }
      if (decision.value !== "approve") {
        body.reason_code = reasonCode.value || undefined;
        if (reason.value.trim()) body.reason = reason.value.trim();
      }
      const outcome = await api.post("/v1/review/decisions", body);
      const skipped = outcome.skipped || [];
      replace(result, h("p", { class: "notice", id: "decision-summary" },
        `Approved ${outcome.approved || 0}, rejected ${outcome.rejected || 0}, revision requested ${outcome.revision_requested || 0}`,
        skipped.length ? `, skipped ${skipped.length}` : "", ".",
        outcome.remaining ? ` ${outcome.remaining} more match the filter: apply again to decide them.` : ""),
      skipped.length ? h("details", {}, h("summary", {}, "Skipped"), h("ul", {}, skipped.slice(0, 200).map((s) => h("li", {}, `${s.id}: ${s.reason}`)))) : null);
      announce(live, result.textContent);
      reason.value = "";
      await reload();
    });
  });
  return form;
}

// ---- briefs and reports --------------------------------------------------------------------

function totals(groups) {
  const sum = { open: 0, claimed: 0, submitted: 0, approved: 0, rejected: 0, paid: 0 };
  for (const g of groups || []) for (const k of Object.keys(sum)) sum[k] += (g.counts && g.counts[k]) || 0;
  return sum;
}

// The brief's payment: a declined card says so, with Stripe's code and message and when.
function fundingLine(funding) {
  if (!funding) return null;
  const line = h("p", { id: "brief-funding", class: funding.status === "failed" ? "has-failure" : "" },
    "Payment: ", h("strong", {}, humanize(funding.status)));
  if (funding.status === "failed") {
    line.append(` — ${funding.failure_reason || "declined"} (${funding.failure_code || "no code"}), ${when(funding.failed_at)}. `,
      "The brand can pay again with the same payment.");
  }
  return line;
}

async function renderBriefs() {
  const left = leftView();
  const page = await api.get("/v1/briefs", { limit: 200 });
  if (left()) return;
  const rows = (page.data || []).map((b) => {
    const c = totals(b.task_groups);
    const m = b.money || {};
    return h("tr", {},
      h("td", {}, h("a", { href: `#brief/${encodeURIComponent(b.id)}` }, b.title)),
      h("td", {}, humanize(b.status), b.funding && b.funding.status === "failed"
        ? h("div", { class: "hint funding-failed" }, "Payment declined") : null),
      h("td", { class: "num" }, money(m.funded_cents, b.currency)),
      h("td", { class: "num" }, money(m.spent_cents, b.currency)),
      h("td", { class: "num" }, money(m.remaining_cents, b.currency)),
      h("td", { class: "num" }, `${c.open} / ${c.claimed} / ${c.submitted} / ${c.approved} / ${c.paid}`));
  });
  replace(main, h("h2", {}, "Briefs"), h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Title"), h("th", {}, "Status"), h("th", { class: "num" }, "Funded"),
      h("th", { class: "num" }, "Spent"), h("th", { class: "num" }, "In escrow"),
      h("th", { class: "num" }, "Open / claimed / submitted / approved / paid"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, "No briefs yet."))))));
}

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

function ratio(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(2) : String(value);
}

async function renderBrief(id) {
  const left = leftView();
  const brief = await api.get(`/v1/briefs/${encodeURIComponent(id)}`);
  if (left()) return;
  const m = brief.money || {};
  const cur = brief.currency;
  const groups = h("div", { class: "table-wrap" }, h("table", { id: "groups" },
    h("thead", {}, h("tr", {}, h("th", {}, "Group"), h("th", { class: "num" }, "Price"),
      ...["open", "claimed", "submitted", "approved", "rejected", "paid"].map((k) => h("th", { class: "num" }, humanize(k))))),
    h("tbody", {}, (brief.task_groups || []).map((g) => h("tr", {},
      h("td", {}, humanize(g.kind), g.name ? ` · ${g.name}` : "", g.paused_reason ? h("div", { class: "field-error" }, `Paused: ${g.paused_reason}`) : null),
      h("td", { class: "num" }, money(g.unit_price_cents, cur)),
      ...["open", "claimed", "submitted", "approved", "rejected", "paid"].map((k) => h("td", { class: "num" }, String((g.counts || {})[k] ?? 0))))))));
  const download = h("button", { type: "button", class: "secondary", id: "download-csv" }, "Download content bank (CSV)");
  const downloadError = h("p", { class: "form-error", role: "alert" });
  download.addEventListener("click", async () => {
    downloadError.textContent = "";
    download.disabled = true;
    try {
      const blob = await api.blob(`/v1/briefs/${encodeURIComponent(id)}/assets`, { format: "csv" });
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `content-bank-${id}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      downloadError.textContent = error.message;
    } finally {
      download.disabled = false;
    }
  });
  const toQueue = h("a", { href: "#review", class: "button secondary" }, "Review this brief's submissions");
  toQueue.addEventListener("click", () => { review.brief = id; });
  const report = h("section", { id: "report", "aria-labelledby": "report-title" }, h("h3", { id: "report-title" }, "Report"), h("p", {}, "Loading…"));
  replace(main,
    h("h2", {}, brief.title),
    h("p", {}, "Status: ", h("strong", {}, humanize(brief.status)), brief.status_reason ? ` — ${brief.status_reason}` : ""),
    fundingLine(brief.funding),
    h("div", { class: "grid", id: "brief-money" },
      stat("Budget", money(m.budget_cents ?? brief.budget_cents, cur)), stat("Funded", money(m.funded_cents, cur)),
      stat("Committed", money(m.committed_cents, cur)), stat("Spent", money(m.spent_cents, cur)),
      stat("Refunded", money(m.refunded_cents, cur)), stat("In escrow", money(m.remaining_cents, cur))),
    h("h3", {}, "Task groups"), groups,
    h("div", { class: "row" }, download, toQueue), downloadError,
    report);
  try {
    renderReport(report, await api.get(`/v1/briefs/${encodeURIComponent(id)}/report`), cur);
  } catch (error) {
    replace(report, h("h3", {}, "Report"), errorBox(error));
  }
}

function renderReport(box, report, currency) {
  const t = report.totals || {};
  const cur = report.currency || currency;
  const groups = report.groups || [];
  const names = new Map(groups.map((g) => [g.group_id, `${humanize(g.kind)}${g.name ? ` · ${g.name}` : ""}`]));
  const verdicts = report.verdicts || [];
  const workers = report.workers || [];
  const count = (v) => String(v ?? "—");
  replace(box, h("h3", { id: "report-title" }, "Report"),
    h("div", { class: "grid", id: "report-totals" },
      stat("Spend", money(t.spend_cents, cur)),
      stat("Approved actions", count(t.approved_actions)),
      stat("Clicks", count(t.clicks)),
      stat("Conversions", count(t.conversions)),
      stat("Revenue", money(t.revenue_cents, cur)),
      stat("CPA", t.cpa_cents === null ? "—" : money(t.cpa_cents, cur)),
      stat("ROAS", ratio(t.roas))),
    h("h3", {}, "Daily spend and CPA"), chart(report.daily || [], cur),
    h("h3", {}, "Verdicts"),
    verdicts.length ? h("ul", { id: "verdicts" }, verdicts.map((v) => h("li", {},
      h("strong", {}, humanize(v.outcome)), ` between ${(v.group_ids || []).map((id) => names.get(id) || id).join(" and ")}`,
      v.winner_group_id ? ` — winner: ${names.get(v.winner_group_id) || v.winner_group_id}` : "",
      v.cpa_difference_percent !== null && v.cpa_difference_percent !== undefined ? ` (CPA ${v.cpa_difference_percent}% apart)` : "")))
      : h("p", { class: "hint" }, "No variants to compare yet."),
    h("h3", {}, "Groups"),
    h("div", { class: "table-wrap" }, h("table", { id: "report-groups" },
      h("thead", {}, h("tr", {}, ...["Group", "Spend", "Actions", "Clicks", "Conversions", "CPA", "ROAS"].map((x, i) => h("th", { class: i ? "num" : "" }, x)))),
      h("tbody", {}, groups.map((g) => h("tr", {},
        h("td", {}, names.get(g.group_id),
          g.paused_reason ? h("div", { class: "field-error" }, `Paused: ${g.paused_reason}`)
            : g.over_stop_threshold ? h("div", { class: "field-error" }, "Over the stop-rule CPA") : null),
        h("td", { class: "num" }, money(g.spend_cents, cur)),
        h("td", { class: "num" }, count(g.approved_actions)),
        h("td", { class: "num" }, count(g.clicks)),
        h("td", { class: "num" }, count(g.conversions)),
        h("td", { class: "num" }, g.cpa_cents === null ? "—" : money(g.cpa_cents, cur)),
        h("td", { class: "num" }, ratio(g.roas))))))),
    workers.length ? h("h3", {}, "Workers") : null,
    workers.length ? h("div", { class: "table-wrap" }, h("table", { id: "report-workers" },
      h("thead", {}, h("tr", {}, ...["Worker", "Spend", "Actions", "Conversions", "CPA"].map((x, i) => h("th", { class: i ? "num" : "" }, x)))),
      h("tbody", {}, workers.map((w) => h("tr", {},
        h("td", {}, w.display_name || w.worker_id, w.top_performer ? h("span", { class: "badge outcome-pass" }, " top performer") : null),
        h("td", { class: "num" }, money(w.spend_cents, cur)),
        h("td", { class: "num" }, count(w.approved_actions)),
        h("td", { class: "num" }, count(w.conversions)),
        h("td", { class: "num" }, w.cpa_cents === null ? "—" : money(w.cpa_cents, cur))))))) : null);
}

// Daily spend as bars (left scale) and CPA as a line (right scale), drawn as inline SVG.
function chart(days, currency) {
  if (!days.length) return h("p", { class: "hint" }, "No spend yet.");
  const W = 640, H = 240, L = 56, R = 56, T = 16, B = 36;
  const spend = days.map((d) => Number(d.spend_cents || 0));
  const cpa = days.map((d) => (d.cpa_cents === null || d.cpa_cents === undefined ? null : Number(d.cpa_cents)));
  const maxSpend = Math.max(1, ...spend);
  const maxCpa = Math.max(1, ...cpa.filter((v) => v !== null));
  const step = (W - L - R) / days.length;
  const barWidth = Math.min(step * 0.7, 48);
  const y = (v, max) => T + (H - T - B) * (1 - v / max);
  const label = (d) => String(d.date || "").slice(5, 10);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": "chart-title" },
    svg("title", { id: "chart-title", text: `Daily spend and CPA over ${days.length} day${days.length === 1 ? "" : "s"}` }),
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#4a4a55" }),
    svg("text", { x: L - 6, y: T + 10, "text-anchor": "end", "font-size": 11, fill: "#1b1b1f", text: money(maxSpend, currency) }),
    svg("text", { x: L - 6, y: H - B, "text-anchor": "end", "font-size": 11, fill: "#1b1b1f", text: money(0, currency) }),
    svg("text", { x: W - R + 6, y: T + 10, "font-size": 11, fill: "#a4161a", text: money(maxCpa, currency) }));
  days.forEach((d, i) => {
    const x = L + i * step;
    const top = y(spend[i], maxSpend);
    root.append(svg("rect", { x: x + (step - barWidth) / 2, y: top, width: barWidth, height: H - B - top, fill: "#5b8def" },
      svg("title", { text: `${d.date}: spend ${money(spend[i], currency)}, CPA ${cpa[i] === null ? "—" : money(cpa[i], currency)}` })));
    if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) {
      root.append(svg("text", { x: x + step / 2, y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#1b1b1f", text: label(d) }));
    }
  });
  const points = cpa.map((v, i) => (v === null ? null : `${L + i * step + step / 2},${y(v, maxCpa)}`)).filter(Boolean);
  if (points.length) {
    root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#a4161a", "stroke-width": 2.5 }));
    for (const p of points) {
      const [cx, cy] = p.split(",");
      root.append(svg("circle", { cx, cy, r: 3.5, fill: "#a4161a" }));
    }
  }
  return h("figure", { id: "chart" }, root,
    h("figcaption", { class: "legend" }, h("span", { class: "swatch-spend" }, "Spend per day"), h("span", { class: "swatch-cpa" }, "CPA per day")));
}

// ---- payouts -------------------------------------------------------------------------------

function renderPayouts() {
  const currency = h("input", { id: "payout-currency", name: "currency", value: "usd", maxlength: 3, autocomplete: "off" });
  const minimum = h("input", { id: "payout-minimum", name: "min_amount_cents", inputmode: "decimal", value: "1.00", autocomplete: "off" });
  const form = h("form", { class: "card", id: "payout-form", novalidate: true },
    h("h2", {}, "Start a payout batch"),
    h("p", {}, "Pays every worker whose available balance is at least the minimum and whose payout account is ready: one transfer per worker."),
    banner(), field("Currency", currency), field("Minimum per worker", minimum, "In the currency's units, e.g. 1.00."),
    h("button", { type: "submit" }, "Start payout batch"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const cents = parseAmount(minimum.value);
      if (cents === null) throw new ApiError(422, { detail: "Enter the minimum as an amount such as 1.00.", errors: { min_amount_cents: ["Enter an amount such as 1.00."] } });
      const batch = await api.post("/v1/payout-batches", { currency: currency.value.trim().toLowerCase(), min_amount_cents: cents });
      location.hash = `#payout/${encodeURIComponent(batch.id)}`;
    });
  });
  const recent = h("section", { "aria-labelledby": "recent-title" }, h("h3", { id: "recent-title" }, "Recent batches"), h("p", {}, "Loading…"));
  replace(main, form, recent);
  api.get("/v1/payout-batches", { limit: 20 }).then((page) => {
    const rows = page.data || [];
    replace(recent, h("h3", { id: "recent-title" }, "Recent batches"), rows.length ? h("div", { class: "table-wrap" }, h("table", { id: "batches" },
      h("thead", {}, h("tr", {}, h("th", {}, "Batch"), h("th", {}, "Status"), h("th", { class: "num" }, "Done"), h("th", { class: "num" }, "Amount"), h("th", {}, "Started"))),
      h("tbody", {}, rows.map((b) => h("tr", {},
        h("td", {}, h("a", { href: `#payout/${encodeURIComponent(b.id)}` }, b.id)),
        h("td", {}, humanize(b.status)),
        h("td", { class: "num" }, `${b.progress?.done ?? 0} / ${b.progress?.total ?? 0}`),
        h("td", { class: "num" }, money(b.totals?.amount_cents, b.currency)),
        h("td", {}, when(b.created_at))))))) : h("p", { class: "hint" }, "No payout batches yet."));
  }, (error) => replace(recent, h("h3", { id: "recent-title" }, "Recent batches"), errorBox(error)));
}

// A worker as a person reads them: the name, with the id beside it for support and search.
function worker(row) {
  return [row.worker_name || "", " ", h("span", { class: "hint" }, row.worker_id || "")];
}

async function renderPayout(id) {
  const bar = h("div", {});
  const meter = h("div", { class: "bar", role: "progressbar", id: "payout-progress", "aria-valuemin": 0, "aria-valuemax": 0, "aria-valuenow": 0, "aria-label": "Payout progress" }, bar);
  const status = h("p", { id: "payout-status", "aria-live": "polite" }, "Loading…");
  const items = h("div", { class: "table-wrap" });
  const skipped = h("section", { "aria-labelledby": "skipped-title" });
  replace(main, h("h2", {}, "Payout batch"), h("p", { class: "hint" }, id), meter, status, items, skipped);
  let stopped = false;
  stops.push(() => { stopped = true; });
  async function poll() {
    if (stopped) return;
    let batch;
    try {
      batch = await api.get(`/v1/payout-batches/${encodeURIComponent(id)}`);
    } catch (error) {
      replace(status, errorBox(error));
      setTimeout(poll, 2000);
      return;
    }
    if (stopped) return;
    const progress = batch.progress || { done: 0, total: 0 };
    const pct = progress.total ? Math.round((100 * progress.done) / progress.total) : (batch.status.startsWith("completed") ? 100 : 0);
    bar.style.width = `${pct}%`;
    meter.setAttribute("aria-valuemax", progress.total);
    meter.setAttribute("aria-valuenow", progress.done);
    meter.setAttribute("aria-valuetext", `${progress.done} of ${progress.total} paid`);
    const finished = batch.status === "completed" || batch.status === "completed_with_failures";
    replace(status, h("strong", { dataset: { status: batch.status } }, humanize(batch.status)),
      ` — ${progress.done} of ${progress.total} transfers done`,
      batch.totals ? `, ${money(batch.totals.amount_cents, batch.currency)} in all` : "");
    const rows = batch.items || [];
    replace(items, rows.length ? h("table", { id: "payout-items" },
      h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", { class: "num" }, "Amount"), h("th", {}, "Status"), h("th", {}, "Transfer"))),
      h("tbody", {}, rows.map((item) => h("tr", {},
        h("td", {}, worker(item)),
        h("td", { class: "num" }, money(item.amount_cents, batch.currency)),
        h("td", {}, item.status === "failed" ? h("strong", { class: "badge outcome-fail" }, "failed") : humanize(item.status),
          item.status === "held" ? h("div", { class: "hint" }, item.available_on ? `until Stripe's funds are available, ${when(item.available_on)}` : "until Stripe's balance can cover it") : null,
          item.failure_reason ? h("div", { class: "field-error" }, item.failure_reason) : null),
        h("td", {}, item.stripe_transfer_id || ""))))) : null);
    const left = batch.skipped || [];
    replace(skipped, left.length ? [h("h3", { id: "skipped-title" }, "Left out of this batch"),
      h("div", { class: "table-wrap" }, h("table", { id: "payout-skipped" },
        h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", { class: "num" }, "Available"), h("th", {}, "Why"))),
        h("tbody", {}, left.map((skip) => h("tr", {},
          h("td", {}, worker(skip)),
          h("td", { class: "num" }, money(skip.available_cents, batch.currency)),
          h("td", {}, humanize(skip.reason)))))))] : []);
    if (finished) announce(live, `Payout batch ${humanize(batch.status)}`);
    // Held items wait days for Stripe's pending funds: no need to ask twice a second meanwhile.
    else setTimeout(poll, rows.some((item) => item.status === "pending") ? 500 : 15000);
  }
  await poll();
}

show();

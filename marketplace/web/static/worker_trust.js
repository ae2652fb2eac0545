// The worker client's trust screens: profile and reputation, why a task is refused, a rejection's
// reason and evidence with its appeal, and the payout history. They call only the public API and
// set only text (never HTML) from data; app.js mounts them.
import {
  ApiError, announce, field, h, humanize, money, replace, submitting, when, banner, errorBox,
} from "./common.js";

const PLATFORMS = [["tiktok", "TikTok"], ["instagram", "Instagram"], ["youtube", "YouTube"], ["x", "X"]];

// The contract's reason codes, as a worker reads them.
const REASON_LABELS = {
  duplicate: "Duplicate of other work",
  off_brief: "Not what the brief asked for",
  missing_disclosure: "Missing disclosure (#ad or #sponsored)",
  broken_link: "Broken or wrong link",
  low_quality: "Quality too low",
  other: "Other reason",
};

// The eligibility rules a claim can be refused for (the 403 problem names one).
const RULE_LABELS = {
  blocked: "Blocked by the brand",
  excluded: "Excluded from this task",
  invite_only: "Invited workers only",
  country: "Not open in your country",
  language: "Needs another language",
  min_approved: "Needs more approved work",
  min_approval_rate: "Needs a higher approval rate",
};
const PROFILE_RULES = new Set(["country", "language"]);

function idFor(name) {
  return `wt-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(Number(rate) * 1000) / 10}%`;
}

export function reasonLabel(code) {
  return REASON_LABELS[code] || humanize(code);
}

// ---- profile and reputation ----------------------------------------------------------------

function reputationTiles(reputation) {
  const r = reputation || {};
  const tiles = [
    ["approved", "Approved", r.approved ?? 0],
    ["rejected", "Rejected", r.rejected ?? 0],
    ["auto_rejected", "Rejected by a check", r.auto_rejected ?? 0],
    ["approval_rate", "Approval rate", percent(r.approval_rate)],
    ["on_time_rate", "On time", percent(r.on_time_rate)],
    ["appeals_won", "Appeals won", r.appeals_won ?? 0],
  ];
  return h("section", { "aria-labelledby": "reputation-title" },
    h("h3", { id: "reputation-title" }, "Your reputation"),
    h("div", { class: "grid", id: "reputation" }, tiles.map(([key, label, value]) => h("div", { class: "stat", dataset: { stat: key } },
      h("div", { class: "label" }, label), h("div", { class: "value" }, String(value))))),
    h("p", { class: "hint" }, r.approval_rate === null || r.approval_rate === undefined
      ? "Your approval rate shows once 5 of your submissions are decided; some tasks ask for one."
      : "Approval rate: approved share of your last 100 decided submissions.",
    r.since ? ` Member since ${when(r.since)}.` : ""));
}

export async function renderProfile(api, main, live) {
  replace(main, h("h2", {}, "Profile"), h("p", {}, "Loading…"));
  const me = (await api.get("/v1/me")).worker || {};
  const reputation = h("div", { id: "reputation-box" }, reputationTiles(me.reputation));

  const name = h("input", { id: idFor("name"), name: "display_name", autocomplete: "nickname", maxlength: 100 });
  const country = h("input", { id: idFor("country"), name: "country", autocomplete: "country", maxlength: 2, placeholder: "GB" });
  const languages = h("input", { id: idFor("languages"), name: "languages", autocomplete: "off", placeholder: "en, fr" });
  const handles = PLATFORMS.map(([platform, label]) => [platform, label,
    h("input", { id: idFor(platform), name: `handle-${platform}`, autocomplete: "off", placeholder: "@name", dataset: { platform } })]);
  const fill = (worker) => {
    name.value = worker.display_name || "";
    country.value = worker.country || "";
    languages.value = (worker.languages || []).join(", ");
    const held = Object.fromEntries((worker.social_accounts || []).map((a) => [a.platform, a.handle]));
    for (const [platform, , input] of handles) input.value = held[platform] || "";
  };
  fill(me);

  const saved = h("p", { class: "notice", id: "profile-saved", role: "status", hidden: true }, "Profile saved.");
  const form = h("form", { class: "card", id: "profile-form", novalidate: true },
    h("h3", {}, "About you"), banner(),
    field("Display name", name),
    field("Country", country, "Two-letter code, such as GB or FR. Some tasks are open only in some countries."),
    field("Languages you write", languages, "Two-letter codes separated by commas, such as en, fr."),
    h("fieldset", { class: "socials" }, h("legend", {}, "Social accounts"),
      h("p", { class: "hint" }, "One handle per platform; leave a platform empty to remove it."),
      handles.map(([, label, input]) => field(label, input))),
    h("button", { type: "submit" }, "Save profile"), saved);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saved.hidden = true;
    submitting(form, async () => {
      const social = [];
      for (const [platform, , input] of handles) {
        delete input.dataset.field;
        const handle = input.value.trim();
        if (!handle) continue;
        // The API names a bad handle by its place in the list sent: point it back at this input.
        input.dataset.field = `social_accounts[${social.length}].handle`;
        social.push({ platform, handle });
      }
      const body = {
        display_name: name.value.trim(),
        country: country.value.trim().toUpperCase(),
        languages: languages.value.split(/[\s,;]+/).map((code) => code.trim().toLowerCase()).filter(Boolean),
        social_accounts: social,
      };
      const worker = await api.patch("/v1/me/profile", body);
      fill(worker);
      replace(reputation, reputationTiles(worker.reputation));
      saved.hidden = false;
      announce(live, "Profile saved.");
    });
  });

  const standing = me.status === "suspended"
    ? h("p", { class: "form-error", id: "suspended-notice", role: "alert" },
      "Your account is suspended: you cannot claim tasks, and your balance is held. ",
      me.suspension?.reason ? `Reason: ${me.suspension.reason}` : "")
    : null;
  replace(main, h("h2", {}, "Profile"), standing, reputation, form);
}

// ---- a refused claim -----------------------------------------------------------------------

// A claim kept out by an eligibility rule (403, the problem naming it): say which rule and why,
// in words, on the task's card, and take the claim button away. Returns false for other errors.
export function showRefusal(form, error) {
  if (!(error instanceof ApiError) || error.status !== 403) return false;
  const rules = Object.keys(error.errors || {});
  const rule = rules.find((name) => RULE_LABELS[name]) || (/not-eligible$/.test(error.problem.type || "") ? rules[0] : null);
  if (!rule) return false;
  const card = form.closest(".task") || form;
  card.querySelector(".refusal")?.remove();
  const detail = [].concat(error.errors[rule] || [])[0] || error.problem.detail || "";
  const notice = h("div", { class: "refusal notice", role: "alert", tabindex: "-1", dataset: { rule } },
    h("p", {}, h("strong", {}, "You can't take this task: "), RULE_LABELS[rule] || humanize(rule), "."),
    detail ? h("p", { class: "refusal-detail" }, detail) : null,
    PROFILE_RULES.has(rule) ? h("p", {}, h("a", { href: "#profile" }, "Check your profile")) : null);
  card.classList.add("refused");
  form.replaceWith(notice);
  notice.focus();
  return true;
}

// ---- a rejection, its evidence and its appeal ----------------------------------------------

const APPEALABLE = new Set(["rejected", "auto_rejected"]);

export function isRejection(submission) {
  return APPEALABLE.has(submission.status);
}

function evidence(submission) {
  const reasons = submission.reasons || [];
  if (submission.status === "auto_rejected" && reasons.length) {
    return h("ul", { class: "plain rejection-evidence", id: "rejection-evidence" }, reasons.map((reason) => h("li", {},
      h("strong", {}, `${humanize(reason.check || "check")}: `), reason.detail || "")));
  }
  const text = submission.reason || (reasons.length ? reasons.map((r) => r.detail).join(" ") : "");
  return h("p", { class: "rejection-evidence proof-text", id: "rejection-evidence" }, text || "No further detail was given.");
}

function appealStatus(appeal) {
  const outcome = {
    open: ["Appeal sent", "A person will look at it and decide."],
    upheld: ["Appeal upheld", "The rejection stands."],
    overturned: ["Appeal won", "The submission is approved and will be paid."],
  }[appeal.status] || [humanize(appeal.status), ""];
  return h("div", { class: `appeal-status card appeal-${appeal.status}`, id: "appeal-status", dataset: { status: appeal.status } },
    h("p", {}, h("strong", {}, `${outcome[0]}. `), outcome[1]),
    appeal.decision_reason ? h("p", { class: "decision-reason" }, h("strong", {}, "Why: "), appeal.decision_reason) : null,
    h("p", { class: "hint" }, "You wrote: ", h("span", { class: "appeal-text" }, appeal.message || "")),
    h("p", { class: "hint" }, `Sent ${when(appeal.created_at)}`, appeal.decided_at ? ` · decided ${when(appeal.decided_at)}` : ""));
}

function readableConflict(error) {
  const detail = error.problem.detail || error.message || "";
  if (/appealed already/i.test(detail)) return "You have already appealed this submission: one appeal per submission. Its status is below.";
  if (/window/i.test(detail)) {
    // The server's end of the window (the page's copy of the submission may be older).
    const ended = (/\(at ([^)\s]+)\)/.exec(detail) || [])[1];
    return `The time to appeal this rejection has passed${ended ? ` (it ended ${when(ended)})` : ""}.`;
  }
  if (/can be appealed/i.test(detail)) return "This submission is no longer rejected, so there is nothing to appeal.";
  return detail;
}

function appealForm(api, submission, panel, live) {
  const message = h("textarea", { id: idFor("appeal"), name: "message", rows: 4, maxlength: 2000, required: true });
  const until = submission.appealable_until;
  const form = h("form", { class: "card", id: "appeal-form", novalidate: true },
    h("h3", {}, "Think this is wrong?"), banner(),
    field("Why should it be approved?", message, until ? `You can appeal once, until ${when(until)}.` : "You can appeal once."),
    h("button", { type: "submit" }, "Appeal"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!message.value.trim()) {
      form.querySelector(".form-error").textContent = "Say why the rejection is wrong.";
      message.setAttribute("aria-invalid", "true");
      message.focus();
      return;
    }
    submitting(form, async () => {
      try {
        const appeal = await api.post(`/v1/submissions/${encodeURIComponent(submission.id)}/appeal`, { message: message.value.trim() });
        announce(live, "Appeal sent.");
        replace(panel, appealStatus(appeal));
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 409) throw error;
        // Already appealed (another tab, a double tap) or out of time: say so in words, and show
        // the appeal when there is one.
        const notice = h("p", { class: "form-error appeal-refused", role: "alert", tabindex: "-1" }, readableConflict(error));
        replace(panel, notice);
        const existing = await api.get(`/v1/submissions/${encodeURIComponent(submission.id)}/appeal`).catch(() => null);
        if (existing) panel.append(appealStatus(existing));
        notice.focus();
      }
    });
  });
  return form;
}

// Reason code, evidence, and the appeal (its status, or a form while it can still be made).
export function rejectionPanel(api, submission, live) {
  const panel = h("div", { id: "appeal-panel", "aria-live": "polite" }, h("p", { class: "hint" }, "Loading appeal…"));
  const section = h("section", { class: "card has-failure rejection", id: "rejection", "aria-labelledby": "rejection-title" },
    h("h3", { id: "rejection-title" }, submission.status === "auto_rejected" ? "Rejected by a check" : "Rejected by a reviewer"),
    h("p", { id: "rejection-code", dataset: { code: submission.reason_code || "" } },
      h("strong", {}, "Reason: "), submission.reason_code ? reasonLabel(submission.reason_code) : "Not given"),
    h("h4", {}, "Evidence"), evidence(submission),
    panel);
  api.get(`/v1/submissions/${encodeURIComponent(submission.id)}/appeal`).then(
    (appeal) => replace(panel, appealStatus(appeal)),
    (error) => {
      if (!(error instanceof ApiError) || error.status !== 404) return replace(panel, errorBox(error));
      const until = submission.appealable_until ? new Date(submission.appealable_until) : null;
      if (until && until.getTime() < Date.now() - 60_000) {
        return replace(panel, h("p", { class: "hint", id: "appeal-closed" }, `The time to appeal ended ${when(until)}.`));
      }
      return replace(panel, appealForm(api, submission, panel, live));
    });
  return section;
}

// ---- the worker's appeals ------------------------------------------------------------------

export async function renderAppeals(api, main) {
  const list = h("div", { id: "appeal-list" }, "Loading…");
  replace(main, h("h2", {}, "Your appeals"), list);
  try {
    const page = await api.get("/v1/me/appeals", { limit: 100 });
    const rows = page.data || [];
    replace(list, rows.length ? h("ul", { class: "plain" }, rows.map((appeal) => h("li", { dataset: { id: appeal.id } },
      appealStatus(appeal),
      h("p", {}, h("a", { href: `#submission/${encodeURIComponent(appeal.submission_id)}` }, "See the submission")))))
      : h("p", { class: "hint" }, "No appeals yet. A rejected submission can be appealed from its page."));
  } catch (error) {
    replace(list, errorBox(error));
  }
}

// ---- payout history ------------------------------------------------------------------------

const PAYOUT_STATUS = {
  pending: "On its way", held: "Waiting for funds", paid: "Paid", failed: "Failed (back in your balance)",
  reversed: "Reversed",
};

function payoutItem(payout) {
  const reversed = payout.reversed_cents ? ` · ${money(payout.reversed_cents, payout.currency)} reversed` : "";
  return h("li", { class: `card payout payout-${payout.status}`, dataset: { id: payout.id, batch: payout.batch_id, status: payout.status } },
    h("div", { class: "row" },
      h("span", { class: "price" }, money(payout.amount_cents, payout.currency)),
      h("span", { class: `badge${payout.status === "paid" ? " outcome-pass" : payout.status === "failed" ? " outcome-fail" : ""}` },
        PAYOUT_STATUS[payout.status] || humanize(payout.status))),
    h("p", { class: "hint" },
      `${when(payout.settled_at || payout.created_at)} · for ${payout.submissions} submission${payout.submissions === 1 ? "" : "s"}${reversed}`),
    payout.status === "held" && payout.available_on ? h("p", { class: "hint" }, `Expected after ${when(payout.available_on)}.`) : null,
    payout.failure_reason && payout.status === "failed" ? h("p", { class: "hint" }, payout.failure_reason) : null,
    payout.stripe_transfer_id ? h("p", { class: "hint transfer" }, "Transfer ", h("code", {}, payout.stripe_transfer_id)) : null);
}

// A section for the earnings page: the worker's payouts, newest first, with "Show more" paging.
export function payoutHistory(api) {
  const list = h("ul", { class: "plain", id: "payout-list" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const status = h("div", {}, h("p", { class: "hint" }, "Loading…"));
  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const page = await api.get("/v1/me/payouts", { limit: 20, cursor });
      replace(status);
      for (const payout of page.data || []) list.append(payoutItem(payout));
      if (!list.children.length) replace(status, h("p", { class: "hint" }, "No payouts yet. Approved work is paid in the next payout batch."));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      replace(status, errorBox(error));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", load);
  load();
  return h("section", { class: "payout-history", "aria-labelledby": "payout-history-title" },
    h("h3", { id: "payout-history-title" }, "Payout history"), status, list, more);
}

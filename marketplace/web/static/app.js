// The worker client: sign up, log in, find and claim tasks, submit proof, watch the checks,
// see earnings and set up payouts. It talks only to the public API (/v1/...).
import {
  ApiError, announce, apiClient, credential, field, goTo, h, humanize, money, outcomeBadge, replace, safeLink, submitting, when, banner, errorBox,
} from "./common.js";
import { isRejection, payoutHistory, reasonLabel, rejectionPanel, renderAppeals, renderProfile, showRefusal } from "./worker_trust.js";

const KINDS = ["caption", "clip", "review", "translation", "keyword_tags", "survey"];
const POLL_MS = 1000;

const token = credential("worker.token");
const api = apiClient(token, () => { token.clear(); show(); });
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");
const claims = new Map(); // task id → the claim as the API returned it
let stops = []; // timers and pollers of the current view, stopped when the view changes

function stopAll() {
  for (const stop of stops) stop();
  stops = [];
}

function every(ms, fn) {
  const id = setInterval(fn, ms);
  stops.push(() => clearInterval(id));
}

function idFor(name) {
  return `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

// ---- routing -------------------------------------------------------------------------------

function route() {
  const [view, arg] = (location.hash.replace(/^#/, "") || "tasks").split("/");
  return { view, arg: arg ? decodeURIComponent(arg) : undefined };
}

async function show() {
  stopAll();
  const signedIn = Boolean(token.get());
  nav.hidden = !signedIn;
  if (!signedIn) return renderAuth();
  const { view, arg } = route();
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const views = {
    tasks: renderTasks, claim: renderClaim, work: renderWork, submission: renderSubmission, earnings: renderEarnings,
    notifications: renderNotifications,
    profile: () => renderProfile(api, main, live), appeals: () => renderAppeals(api, main),
  };
  refreshUnread();
  const render = views[view] || renderTasks;
  try {
    await render(arg);
  } catch (error) {
    replace(main, h("h2", {}, "Something went wrong"), errorBox(error));
  }
}

window.addEventListener("hashchange", show);
document.getElementById("log-out").addEventListener("click", () => {
  token.clear();
  claims.clear();
  goTo("", show);
});

// ---- accounts ------------------------------------------------------------------------------

function renderAuth() {
  const loginEmail = h("input", { id: "login-email", name: "email", type: "email", autocomplete: "username", required: true });
  const loginPassword = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const login = h("form", { class: "card", id: "login-form", novalidate: true },
    h("h2", {}, "Log in"), banner(),
    field("Email", loginEmail), field("Password", loginPassword),
    h("button", { type: "submit" }, "Log in"));
  login.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(login, async () => {
      await logIn(loginEmail.value.trim(), loginPassword.value);
    });
  });

  const email = h("input", { id: "signup-email", name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { id: "signup-password", name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const displayName = h("input", { id: "signup-name", name: "display_name", autocomplete: "nickname", required: true });
  const country = h("input", { id: "signup-country", name: "country", autocomplete: "country", required: true, maxlength: 2, placeholder: "GB" });
  const signup = h("form", { class: "card", id: "signup-form", novalidate: true },
    h("h2", {}, "New here? Sign up"), banner(),
    field("Email", email), field("Password", password, "At least 10 characters."),
    field("Display name", displayName), field("Country", country, "Two-letter code, such as GB or US."),
    h("button", { type: "submit" }, "Sign up"));
  signup.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(signup, async () => {
      await api.post("/v1/workers", {
        email: email.value.trim(), password: password.value,
        display_name: displayName.value.trim(), country: country.value.trim().toUpperCase(),
      });
      await logIn(email.value.trim(), password.value);
    });
  });
  replace(main, signup, login);
}

async function logIn(email, password) {
  const body = await api.post("/v1/auth/token", { email, password });
  token.set(body.token);
  goTo("#tasks", show);
}

// ---- tasks ---------------------------------------------------------------------------------

// What the brand may do with the work, shown before claiming: claiming accepts it.
function usageRights(brief, accepted) {
  const rights = brief?.usage_rights;
  if (!rights) return null;
  const days = rights.term_days;
  return h("p", { class: "hint rights" },
    h("strong", {}, "Usage rights: "),
    `${(rights.channels || []).map(humanize).join(", ")} · ${days} day${days === 1 ? "" : "s"} from approval · `,
    `${(rights.territories || []).join(", ")} · ${rights.exclusive ? "exclusive" : "not exclusive"}. `,
    accepted ? "You accepted these by claiming." : "Claiming this task accepts them.");
}

function describeProof(proof, brief) {
  const parts = [];
  if (brief?.disclosure_required) parts.push("Your text must include #ad or #sponsored");
  if (brief?.disclosure_on_media) {
    parts.push("The screenshot itself must show the disclosure (#ad, Paid partnership, Publicité, Werbung…)");
  }
  for (const rule of brief?.prohibitions || []) parts.push(`Not allowed: ${rule}`);
  if (!proof) return parts;
  if (proof.screenshot === "required") parts.push("Screenshot required");
  else if (proof.screenshot === "optional") parts.push("Screenshot optional");
  if (proof.link) {
    const domains = (proof.link.allowed_domains || []).join(", ");
    parts.push(`${proof.link.required === false ? "Link optional" : "Link required"}${domains ? ` (on ${domains})` : ""}`);
    if (proof.link.where) parts.push(proof.link.where);
  }
  if (proof.text) {
    const lo = proof.text.min_length, hi = proof.text.max_length;
    const bounds = lo && hi ? ` (${lo}–${hi} characters)` : lo ? ` (at least ${lo} characters)` : hi ? ` (at most ${hi} characters)` : "";
    parts.push(`${proof.text.required === false ? "Text optional" : "Text required"}${bounds}`);
  }
  return parts;
}

async function renderTasks() {
  const params = new URLSearchParams(location.search);
  const select = h("select", { id: "kind-filter", name: "kind" },
    h("option", { value: "" }, "All kinds"),
    KINDS.map((kind) => h("option", { value: kind }, humanize(kind))));
  select.value = sessionStorage.getItem("marketplace.worker.kind") || params.get("kind") || "";
  const list = h("div", { id: "task-list", "aria-live": "polite" }, h("p", {}, "Loading tasks…"));
  const filter = h("form", { class: "filters", role: "search" }, field("Kind of task", select));
  filter.addEventListener("submit", (event) => event.preventDefault());
  replace(main, h("h2", {}, "Tasks"), filter, list);

  let latest = 0; // answers to an older choice of kind are dropped
  async function load() {
    const mine = ++latest;
    sessionStorage.setItem("marketplace.worker.kind", select.value);
    try {
      const page = await api.get("/v1/tasks", { kind: select.value, limit: 100 });
      if (mine !== latest) return;
      const groups = page.data || [];
      if (!groups.length) return replace(list, h("p", {}, "No open tasks right now. Check back soon."));
      replace(list, groups.map(taskCard));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  select.addEventListener("change", load);
  await load();
}

function taskCard(group) {
  const groupId = group.id || group.group_id;
  const remaining = group.remaining_count ?? group.remaining;
  const blocked = group.can_claim === false;
  const form = h("form", { class: "claim-form" }, banner(),
    blocked ? h("p", { class: "hint" }, `You hold ${group.held_by_you} of these, the most one worker may take.`) : null,
    h("button", { type: "submit", disabled: blocked }, "Claim this task"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const claim = await api.post(`/v1/task-groups/${encodeURIComponent(groupId)}/claim`).catch((error) => {
        if (showRefusal(form, error)) return null; // an eligibility rule: said on the card
        throw error;
      });
      if (!claim) return;
      claim.fetchedAt = Date.now();
      claims.set(claim.task.id, claim);
      location.hash = `#claim/${encodeURIComponent(claim.task.id)}`;
    });
  });
  return h("article", { class: "card task", dataset: { group: groupId, kind: group.kind } },
    h("div", { class: "row" },
      h("h3", {}, humanize(group.kind), group.name ? ` · ${group.name}` : ""),
      h("span", { class: "price" }, money(group.unit_price_cents, group.currency))),
    group.brief?.title ? h("p", { class: "hint" }, group.brief.title) : null,
    remaining !== undefined
      ? h("p", { class: "hint" }, `${remaining}${group.remaining_count_capped ? "+" : ""} left`) : null,
    group.instructions ? h("p", { class: "instructions" }, group.instructions) : null,
    h("ul", { class: "hint" }, describeProof(group.proof, group.brief).map((text) => h("li", {}, text))),
    usageRights(group.brief, false),
    form);
}

// ---- a claim and its proof -----------------------------------------------------------------

async function findClaim(taskId) {
  if (claims.has(taskId)) return claims.get(taskId);
  try {
    const page = await api.get("/v1/me/claims", { limit: 500 });
    for (const claim of page.data || []) claims.set(claim.task.id, { ...claim, fetchedAt: Date.now() });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  return claims.get(taskId);
}

// A task sent back for revision is no longer among the claims waiting for proof: find its group
// (price, instructions, proof rules) through the worker's submissions and the task listing.
async function revisedTask(taskId) {
  try {
    const mine = await api.get("/v1/me/submissions", { limit: 100 });
    const last = (mine.data || []).find((sub) => sub.task_id === taskId);
    if (!last) return null;
    const groups = await api.get("/v1/tasks", { brief: last.brief_id, limit: 100 });
    const group = (groups.data || []).find((g) => g.id === last.group_id);
    return group ? { ...group, id: taskId, group_id: group.id } : null;
  } catch (error) {
    return null;
  }
}

function countdown(claim) {
  const out = h("span", { class: "countdown", role: "timer", "aria-live": "off" });
  // The server's seconds-left, not our clock against its timestamp: a phone's clock may be off.
  const end = claim.expires_in_seconds !== undefined && claim.fetchedAt
    ? claim.fetchedAt + claim.expires_in_seconds * 1000 : new Date(claim.claim_expires_at).getTime();
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    const m = Math.floor(left / 60), s = left % 60;
    out.textContent = left ? `${m}:${String(s).padStart(2, "0")} left` : "expired";
  };
  tick();
  every(1000, tick);
  return out;
}

function copyButton(input) {
  const button = h("button", { type: "button", class: "secondary" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (err) {
      input.select();
      document.execCommand("copy"); // older mobile browsers
    }
    button.textContent = "Copied";
    announce(live, "Tracked link copied");
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  return button;
}

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

async function renderClaim(taskId) {
  replace(main, h("p", {}, "Loading…"));
  const claim = await findClaim(taskId);
  const task = claim?.task || (await revisedTask(taskId)) || { id: taskId };
  const proof = task.proof || null;
  const wants = (part) => !proof || (part === "screenshot" ? proof.screenshot && proof.screenshot !== "none" : Boolean(proof[part]));

  const header = h("section", { class: "card", "aria-labelledby": "claim-title" },
    h("h2", { id: "claim-title" }, task.kind ? `Your ${humanize(task.kind)} task` : "Your task"),
    task.unit_price_cents !== undefined ? h("p", { class: "price" }, money(task.unit_price_cents, task.currency)) : null,
    task.instructions ? h("p", { class: "instructions" }, task.instructions) : null,
    claim?.brief?.key_message ? h("p", {}, h("strong", {}, "Key message: "), claim.brief.key_message) : null,
    h("ul", { class: "hint" }, describeProof(proof, claim?.brief).map((text) => h("li", {}, text))),
    usageRights(claim?.brief, true));
  if (claim?.claim_expires_at && claim.status === "active") {
    header.append(h("p", {}, "Time left to submit: ", countdown(claim)));
  }
  if (claim?.tracked_link) {
    const linkInput = h("input", { id: "tracked-link", readonly: true, value: claim.tracked_link });
    header.append(h("div", { class: "field" },
      h("label", { for: "tracked-link" }, "Your tracked link"),
      h("p", { class: "hint" }, "Share this link in your post: clicks on it count for you."),
      h("div", { class: "tracked" }, linkInput, copyButton(linkInput))));
  }
  if (claim?.promo_code) {
    const promoInput = h("input", { id: "promo-code", readonly: true, value: claim.promo_code });
    header.append(h("div", { class: "field" },
      h("label", { for: "promo-code" }, "Your promo code"),
      h("p", { class: "hint" }, "Share it with your post: sales made with this code count for you, even without a click."),
      h("div", { class: "tracked" }, promoInput, copyButton(promoInput))));
  }
  if (claim?.status === "active") {
    const release = h("form", {}, banner(), h("button", { type: "submit", class: "danger" }, "Give this task back"));
    release.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(release, async () => {
        await api.post(`/v1/tasks/${encodeURIComponent(taskId)}/release`);
        claims.delete(taskId);
        location.hash = "#tasks";
      });
    });
    header.append(release);
  }

  const form = h("form", { class: "card", id: "proof-form", novalidate: true }, h("h2", {}, "Submit proof"), banner());
  let preview = null;
  if (wants("screenshot")) {
    const file = h("input", { id: "proof-screenshot", name: "screenshot", type: "file", accept: "image/*" });
    preview = h("img", { class: "preview", alt: "Preview of the chosen screenshot", hidden: true });
    form.append(field("Screenshot", file, "Choose it from your camera roll."), preview);
    file.addEventListener("change", () => {
      const chosen = file.files[0];
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.hidden = !chosen;
      if (!chosen) return;
      preview.src = URL.createObjectURL(chosen);
      // A screenshot's file time is when it was taken; use it when it falls within the claim.
      const taken = new Date(chosen.lastModified);
      if (claimedAt && taken >= claimedAt && taken <= new Date()) {
        captured.value = localInputValue(taken);
        captured.dataset.prefilled = captured.value;
        captured.dataset.exact = taken.toISOString();
      }
    });
  }
  if (wants("link")) {
    form.append(field("Link to your post", h("input", { id: "proof-link", name: "link", type: "url", inputmode: "url", autocomplete: "off" }),
      proof?.link?.allowed_domains ? `On ${proof.link.allowed_domains.join(", ")}.` : null));
  }
  if (wants("text")) {
    form.append(field("Text", h("textarea", { id: "proof-text", name: "text", rows: 4 }),
      proof?.text?.max_length ? `Up to ${proof.text.max_length} characters.` : null));
  }
  // Pre-filled with now, but never before the claim (the timestamp check wants a time between
  // the claim and the submission, and a phone's clock may run behind the server's).
  const claimedAt = claim?.claimed_at ? new Date(claim.claimed_at) : null;
  const now = new Date();
  const captured = h("input", {
    id: "proof-captured", name: "captured_at", type: "datetime-local", step: 1,
    value: localInputValue(claimedAt && claimedAt > now ? new Date(claimedAt.getTime() + 1000) : now),
  });
  captured.dataset.prefilled = captured.value;
  form.append(field("Captured at", captured, "When you took the screenshot or posted (your local time)."),
    h("button", { type: "submit" }, "Submit proof"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const body = new FormData();
      for (const input of form.querySelectorAll("input[name], textarea[name]")) {
        if (input.type === "file") {
          if (input.files[0]) body.append(input.name, input.files[0]);
        } else if (input.name === "captured_at") {
          // Untouched, the pre-filled time stands for "just now": send it to the millisecond
          // (the field shows whole seconds, which could fall just before the claim).
          const untouched = input.value === input.dataset.prefilled;
          const moment = !untouched ? new Date(input.value) : input.dataset.exact ? new Date(input.dataset.exact)
            : new Date(Math.max(Date.now(), claimedAt ? claimedAt.getTime() + 1 : 0));
          if (input.value) body.append("captured_at", moment.toISOString());
        } else if (input.value !== "") {
          body.append(input.name, input.value);
        }
      }
      const submission = await api.upload(`/v1/tasks/${encodeURIComponent(taskId)}/submissions`, body);
      claims.delete(taskId);
      location.hash = `#submission/${encodeURIComponent(submission.id)}`;
    });
  });
  replace(main, header, form);
}

// ---- submissions ---------------------------------------------------------------------------

function checksList(submission) {
  const checks = submission.checks || [];
  if (!checks.length) {
    return h("p", { class: "hint" }, submission.status === "validating" ? "Checks are running…" : "No checks recorded.");
  }
  return h("ul", { class: "plain checks" }, checks.map((check) => h("li", { dataset: { check: check.name, outcome: check.outcome } },
    outcomeBadge(check.outcome), " ", h("strong", {}, humanize(check.name)), check.detail ? ` — ${check.detail}` : "")));
}

function submissionBody(submission) {
  const decision = [];
  const revision = submission.revision || {};
  const reasonCode = submission.reason_code || revision.reason_code;
  const reasonText = submission.reason || revision.reason;
  if (isRejection(submission)) {
    decision.push(rejectionPanel(api, submission, live)); // reason code, evidence, appeal
  } else if (reasonCode || reasonText) {
    decision.push(h("p", { class: "notice", id: "reviewer-note" }, h("strong", {}, "Reviewer: "),
      reasonCode ? `${humanize(reasonCode)}. ` : "", reasonText || ""));
  }
  for (const reason of isRejection(submission) ? [] : submission.reasons || []) {
    decision.push(h("p", { class: "notice" }, reason.check ? `${humanize(reason.check)}: ` : "", reason.detail || ""));
  }
  if (submission.status === "revision_requested") {
    decision.push(h("p", {}, revision.deadline ? `Send a revision by ${when(revision.deadline)}. ` : "",
      h("a", { class: "button", href: `#claim/${encodeURIComponent(submission.task_id)}` }, "Submit a revision")));
  }
  return [
    h("p", {}, "Status: ", h("strong", { class: "submission-status", dataset: { status: submission.status } }, humanize(submission.status))),
    submission.waits_for === "review"
      ? h("p", { class: "hint", id: "next-step" }, "A check could not decide on its own, so a person will look at it and decide.")
      : submission.auto_approve_at && ["validation", "auto_approval"].includes(submission.waits_for)
        ? h("p", { class: "hint", id: "next-step" }, `Approved automatically by ${when(submission.auto_approve_at)} unless a reviewer decides first.`) : null,
    ...decision,
    h("h3", {}, "Checks"), checksList(submission),
    h("h3", {}, "Your proof"),
    submission.text ? h("p", { class: "proof-text" }, submission.text) : null,
    submission.link ? h("p", {}, safeLink(submission.link)) : null,
    h("p", { class: "hint" }, `Submitted ${when(submission.submitted_at || submission.created_at)}`),
  ];
}

async function renderSubmission(id) {
  const body = h("div", { id: "submission", "aria-live": "polite" });
  replace(main, h("h2", {}, "Your submission"), body);
  let lastStatus = null;
  let stopped = false;
  stops.push(() => { stopped = true; });
  async function poll() {
    if (stopped) return;
    try {
      const submission = await api.get(`/v1/submissions/${encodeURIComponent(id)}`);
      if (stopped) return;
      replace(body, submissionBody(submission));
      if (lastStatus && lastStatus !== submission.status) announce(live, `Submission is now ${humanize(submission.status)}`);
      lastStatus = submission.status;
      if (submission.status === "validating") setTimeout(poll, POLL_MS);
    } catch (error) {
      replace(body, errorBox(error));
      if (error.status === 0 || error.status >= 500) setTimeout(poll, POLL_MS * 3);
    }
  }
  await poll();
}

async function renderWork() {
  const claimList = h("div", { id: "claim-list" }, "Loading…");
  const subList = h("div", { id: "submission-list" }, "Loading…");
  replace(main, h("h2", {}, "My work"), h("h3", {}, "Tasks you hold"), claimList, h("h3", {}, "Submissions"), subList);
  const [claimPage, subPage] = await Promise.allSettled([
    api.get("/v1/me/claims", { limit: 100 }), api.get("/v1/me/submissions", { limit: 100 }),
  ]);
  if (claimPage.status === "rejected") replace(claimList, errorBox(claimPage.reason));
  else {
    const held = claimPage.value.data || [];
    for (const claim of held) claims.set(claim.task.id, { ...claim, fetchedAt: Date.now() });
    replace(claimList, held.length ? h("ul", { class: "plain" }, held.map((claim) => h("li", { class: "card" },
      h("a", { href: `#claim/${encodeURIComponent(claim.task.id)}` }, `${humanize(claim.task.kind)} · ${money(claim.task.unit_price_cents, claim.task.currency)}`),
      ` — due ${when(claim.claim_expires_at)}`))) : h("p", { class: "hint" }, "None. Claim one from Tasks."));
  }
  if (subPage.status === "rejected") replace(subList, errorBox(subPage.reason));
  else {
    const rows = subPage.value.data || [];
    replace(subList, rows.length ? h("ul", { class: "plain" }, rows.map((sub) => h("li", { class: `card${sub.status === "revision_requested" ? " has-failure" : ""}` },
      h("a", { href: `#submission/${encodeURIComponent(sub.id)}` }, humanize(sub.status)),
      sub.text ? h("span", {}, ` — “${sub.text.slice(0, 60)}${sub.text.length > 60 ? "…" : ""}”`) : null,
      sub.status === "revision_requested" ? h("strong", {}, " — revision requested") : null,
      sub.status === "auto_rejected" ? h("strong", {}, " — a check failed") : null,
      isRejection(sub) && sub.reason_code ? h("span", { class: "reason-code" }, ` (${reasonLabel(sub.reason_code)})`) : null,
      h("span", { class: "hint" }, ` ${when(sub.submitted_at || sub.created_at)}`)))) : h("p", { class: "hint" }, "Nothing submitted yet."));
  }
}

// ---- earnings and payouts ------------------------------------------------------------------

function earningsTiles(earnings) {
  const currency = earnings.currency || "usd";
  const tiles = [
    ["Pending review", earnings.pending_review_cents],
    ["Available", earnings.available_cents],
    ["In transit", earnings.in_transit_cents],
    ["Paid", earnings.paid_cents],
  ];
  return h("div", { class: "grid", id: "earnings" }, tiles.map(([label, cents]) => h("div", { class: "stat" },
    h("div", { class: "label" }, label), h("div", { class: "value" }, money(cents || 0, currency)))));
}

async function renderEarnings() {
  const box = h("div", {}, "Loading…");
  const payout = h("form", { class: "card", id: "payout-form" },
    h("h3", {}, "Payout account"),
    h("p", {}, "Payouts go to a Stripe account in your name. Set it up once; we reuse it after."),
    banner(), h("button", { type: "submit" }, "Set up payouts"), h("div", { id: "payout-result" }));
  const describeAccount = (account) => replace(payout.querySelector("#payout-result"),
        h("p", { id: "payout-account" }, "Account ", h("code", {}, account.account_id),
          account.transfers_active ? " is ready to receive payouts." : " is set up; finish Stripe's onboarding to receive payouts."),
        account.onboarding_url ? h("p", {}, safeLink(account.onboarding_url, "Finish setting up your account at Stripe")) : null);
  payout.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(payout, async () => describeAccount(await api.post("/v1/me/payout-account")));
  });
  // Back from Stripe's onboarding (its return and refresh links land here).
  const back = new URLSearchParams(location.search).get("payout_account");
  const notice = back === "ready" ? h("p", { class: "notice", id: "onboarding-notice" },
    "Stripe onboarding done. Stripe tells us when your account can receive payouts; this page shows it.")
    : back === "refresh" ? h("p", { class: "notice", id: "onboarding-notice" },
      "That onboarding link has expired. Press \u201cSet up payouts\u201d for a fresh one.") : null;
  replace(main, h("h2", {}, "Earnings"), notice, box, payout, payoutHistory(api));
  api.get("/v1/me/payout-account").then(describeAccount, () => { /* none yet: the button makes one */ });
  try {
    const earnings = await api.get("/v1/me/earnings");
    const list = earnings.by_currency || [];
    replace(box, list.length ? list.map(earningsTiles) : earningsTiles({ currency: "usd" }));
  } catch (error) {
    replace(box, errorBox(error));
  }
}

// ---- notifications -------------------------------------------------------------------------

const unreadBadge = document.getElementById("unread-count");

function showUnread(count) {
  unreadBadge.hidden = !count;
  unreadBadge.textContent = count ? String(count) : "";
  unreadBadge.setAttribute("aria-label", `${count} unread`);
}

function refreshUnread() {
  api.get("/v1/me/notifications", { unread: "true", limit: 1 }).then((page) => showUnread(page.unread), () => {});
}

function notificationItem(note) {
  const target = ["approved", "rejected", "revision_requested"].includes(note.kind)
    ? `#submission/${encodeURIComponent(note.subject_id)}` : ["paid", "bonus"].includes(note.kind) ? "#earnings"
      : note.kind === "appeal_decided" ? "#appeals" : null;
  return h("li", { class: `card${note.read ? "" : " unread"}${note.kind === "rejected" ? " has-failure" : ""}`, "data-id": note.id },
    target ? h("a", { href: target }, note.title) : h("strong", {}, note.title),
    note.reason_code ? h("p", {}, h("span", { class: "label" }, "Reason: "), humanize(note.reason_code)) : null,
    note.message ? h("p", {}, note.message) : null,
    h("span", { class: "hint" }, `${note.read ? "" : "New · "}${when(note.created_at)}`));
}

async function renderNotifications() {
  const list = h("div", { id: "notification-list" }, "Loading…");
  const markAll = h("form", { id: "mark-all-read" }, banner(), h("button", { type: "submit" }, "Mark all as read"));
  replace(main, h("h2", {}, "Notifications"), markAll, list);
  const load = async () => {
    const page = await api.get("/v1/me/notifications", { limit: 100 });
    showUnread(page.unread);
    const rows = page.data || [];
    replace(list, rows.length ? h("ul", { class: "plain" }, rows.map(notificationItem))
      : h("p", { class: "hint" }, "Nothing yet. Decisions on your work and payments show up here."));
  };
  markAll.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(markAll, async () => {
      await api.post("/v1/me/notifications/read", { ids: "all" });
      announce(live, "All notifications marked as read.");
      await load();
    });
  });
  try {
    await load();
  } catch (error) {
    replace(list, errorBox(error));
  }
}

show();

// Shared by the worker client and the console: calls to the public API, problem documents shown
// next to their fields, and DOM building that only ever sets text (never HTML) from data.

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem || {};
    this.errors = (problem && problem.errors) || {};
  }
}

function randomKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A credential kept in sessionStorage: it survives a reload of the tab, not the tab itself, and
// it is never put in a URL.
export function credential(name) {
  const key = `marketplace.${name}`;
  return {
    get: () => sessionStorage.getItem(key),
    set: (value) => sessionStorage.setItem(key, value),
    clear: () => sessionStorage.removeItem(key),
  };
}

export function apiClient(store, onUnauthorized) {
  async function request(method, path, { json, form, query, blob, idempotencyKey } = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json, application/problem+json" };
    const secret = store.get();
    if (secret) headers.Authorization = `Bearer ${secret}`;
    let body;
    if (json !== undefined) {
      body = JSON.stringify(json);
      headers["Content-Type"] = "application/json";
    } else if (form) {
      body = form; // the browser sets the multipart boundary
    }
    if (method === "POST" && (json !== undefined || idempotencyKey)) {
      headers["Idempotency-Key"] = idempotencyKey || randomKey();
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, { title: "Network error", detail: "Could not reach the server. Check your connection and try again." });
    }
    if (response.status === 401 && secret && onUnauthorized) onUnauthorized();
    if (response.ok && blob) return response.blob();
    const type = response.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await response.json().catch(() => null) : null;
    if (!response.ok) {
      throw new ApiError(response.status, data || { title: response.statusText, detail: `The server answered ${response.status}.` });
    }
    return data;
  }
  return {
    get: (path, query) => request("GET", path, { query }),
    post: (path, json, opts = {}) => request("POST", path, { json: json === undefined ? {} : json, ...opts }),
    patch: (path, json) => request("PATCH", path, { json }),
    upload: (path, form) => request("POST", path, { form }),
    blob: (path, query) => request("GET", path, { query, blob: true }),
    del: (path) => request("DELETE", path),
  };
}

// Build an element. Strings become text nodes; attributes are set one by one; "on…" keys
// attach listeners (there are no inline handlers anywhere: the CSP forbids them).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "text") el.textContent = value;
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

// Go to a view. A new hash fires hashchange, whose listener shows the view; showing it here as
// well would render it twice (and the second render would drop anything chosen in the first).
export function goTo(hash, show) {
  if (location.hash === hash) show();
  else location.hash = hash;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A link only for http(s) URLs; anything else (javascript:, data:) is shown as text.
export function safeLink(url, text) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return h("a", { href: parsed.href, rel: "noopener noreferrer nofollow", target: "_blank" }, text || url);
    }
  } catch (err) { /* not a URL: shown as text below */ }
  return h("span", {}, url);
}

const ZERO_DECIMAL = new Set(["jpy", "krw", "vnd", "clp", "isk", "huf", "twd", "ugx", "xaf", "xof"]);
export function money(cents, currency = "usd") {
  if (cents === null || cents === undefined) return "—";
  const cur = (currency || "usd").toUpperCase();
  const digits = ZERO_DECIMAL.has(cur.toLowerCase()) ? 0 : 2;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: cur, minimumFractionDigits: digits })
      .format(Number(cents) / 10 ** digits);
  } catch (err) {
    return `${(Number(cents) / 10 ** digits).toFixed(digits)} ${cur}`;
  }
}

// "12.34" → 1234 by string arithmetic (no float rounding near money); null when not an amount.
export function parseAmount(text) {
  const match = /^\s*(\d{1,9})(?:[.,](\d{0,2}))?\s*$/.exec(text || "");
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function humanize(word) {
  return String(word || "").replace(/_/g, " ");
}

// Problem documents → messages beside their fields. A field's error slot is the element whose
// id is the input's id + "-error" (the input names it in aria-describedby). What the user typed
// stays in the form: nothing here resets a value.
export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const banner = form.querySelector(".form-error");
  if (banner) banner.textContent = "";
}

function fieldInput(form, name) {
  const candidates = [name, name.replace(/\[\d+\]$/, ""), name.split(".").pop()];
  for (const candidate of candidates) {
    const found = form.querySelector(`[name="${CSS.escape(candidate)}"], [data-field="${CSS.escape(candidate)}"]`);
    if (found) return found;
  }
  return null;
}

export function showErrors(form, error) {
  clearErrors(form);
  const unplaced = [];
  let first = null;
  for (const [name, messages] of Object.entries(error.errors || {})) {
    const text = [].concat(messages).join(" ");
    const input = fieldInput(form, name);
    const slot = input && form.querySelector(`#${CSS.escape(input.id)}-error`);
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    } else {
      unplaced.push(name === "_schema" ? text : `${humanize(name)}: ${text}`);
    }
  }
  const banner = form.querySelector(".form-error");
  const summary = first && !unplaced.length ? "Please correct the fields marked below." : [error.message, ...unplaced].join(" ");
  if (banner) banner.textContent = summary;
  (first || banner)?.focus?.();
  if (error.status === 429 && banner) {
    banner.textContent += " Too many requests: please wait a moment and try again.";
  }
}

// Run an async action for a form: disable its submit button while it runs, show errors in place.
export async function submitting(form, action) {
  const button = form.querySelector('button[type="submit"]');
  clearErrors(form);
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError) showErrors(form, error);
    else showErrors(form, new ApiError(0, { detail: String(error.message || error) }));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// A labelled field with its hint and error slot, wired with aria-describedby.
export function field(label, control, hint) {
  const id = control.id;
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    control,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }));
}

export function outcomeBadge(outcome) {
  const label = { pass: "✓ pass", fail: "✗ fail", warn: "! warn" }[outcome] || humanize(outcome || "pending");
  return h("span", { class: `badge outcome-${outcome || "pending"}` }, label);
}

export function announce(region, message) {
  region.textContent = "";
  // a fresh text node makes screen readers read a repeated message again
  requestAnimationFrame(() => { region.textContent = message; });
}

// A form's problem line (showErrors fills it), an error as a paragraph, and a <select>'s option:
// the same on every page of both clients.
export function banner() {
  return h("p", { class: "form-error", role: "alert", tabindex: "-1" });
}

export function errorBox(error) {
  return h("p", { class: "form-error", role: "alert" }, error instanceof ApiError ? error.message : String(error));
}

export function option(value, label, selected) {
  return h("option", { value, selected: selected === value }, label);
}

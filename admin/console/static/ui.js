// Small DOM helpers: every page is built from these, with no HTML strings,
// so that nothing a server or a user wrote is ever parsed as markup.

import { call } from "./api.js";

let uid = 0;

// h makes an element: h("button", {class: "x", onclick: f}, "text", child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// field is a labelled control: the label names the control for screen
// readers and for the tests.
export function field(label, control, hint) {
  const id = control.id || `f${++uid}`;
  control.id = id;
  const hintEl = hint ? h("small", { class: "hint", id: id + "-hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

export const input = (attrs = {}) => h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });

export function select(options, attrs = {}) {
  return h("select", attrs, options.map((o) => (Array.isArray(o) ? h("option", { value: o[0] }, o[1]) : h("option", { value: o }, o))));
}

export const button = (text, onclick, attrs = {}) => h("button", { type: "button", onclick, ...attrs }, text);

// form wraps controls in a form whose submit runs onsubmit (once at a
// time) and shows its error in the form.
export function form(title, controls, submitText, onsubmit, attrs = {}) {
  const status = h("div", { class: "form-status", role: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, submitText);
  const f = h("form", { class: "card", ...attrs, "aria-label": title }, title ? h("h3", {}, title) : null, controls, h("div", { class: "actions" }, submit), status);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    status.replaceChildren();
    try {
      const said = await onsubmit(f);
      if (said) status.replaceChildren(notice(said));
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  return f;
}

export function errorBox(e) {
  return h("div", { class: "error", role: "alert" }, e && e.message ? e.message : String(e));
}

export const notice = (text) => h("div", { class: "notice", role: "status" }, text);

// table renders rows under headers; cells are nodes or text.
export function table(caption, headers, rows, empty = "None.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

// section is a page's part, with its own error place: a failure in one
// part says so there and leaves the rest of the page.
export function section(title, build) {
  const body = h("div", { class: "section-body" }, h("p", { class: "loading" }, "Loading…"));
  const s = h("section", { "aria-label": title }, h("h2", {}, title), body);
  const load = async () => {
    try {
      body.replaceChildren(...[await build(load)].flat().filter(Boolean));
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  };
  s.reload = load;
  load();
  return s;
}

export async function copy(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    btn.textContent = "Copied";
  } catch {
    btn.textContent = "Select and copy";
  }
  setTimeout(() => (btn.textContent = "Copy"), 2000);
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");

// pagedList is a list the API serves a page at a time ({items, next}) at
// path, as idn, with count items a page and the non-empty values of
// filters (inputs by query name). render shows a page's items. first()
// shows the first page; only the answer to the page asked for last is
// shown.
export function pagedList({ idn, path, count, filters, render, labels = ["Previous page", "Next page"], attrs = {} }) {
  const box = h("div", attrs);
  const pages = [""];
  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    const q = new URLSearchParams({ count: String(count) });
    for (const [key, el] of Object.entries(filters)) if (el.value.trim()) q.set(key, el.value.trim());
    if (pages[pages.length - 1]) q.set("next", pages[pages.length - 1]);
    box.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    try {
      const r = (await call("GET", `${path}?${q}`, { idn })).body;
      if (mine !== asked) return;
      box.replaceChildren(render(r.items || []), h("div", { class: "pager" },
        pages.length > 1 ? button(labels[0], () => { pages.pop(); load(); }, { class: "secondary" }) : null,
        r.next ? button(labels[1], () => { pages.push(r.next); load(); }, { class: "secondary" }) : null,
        h("span", { class: "hint" }, `Page ${pages.length}`)));
    } catch (e) {
      if (mine === asked) box.replaceChildren(errorBox(e));
    }
  };
  const first = () => {
    pages.length = 1;
    return load();
  };
  return { box, first };
}

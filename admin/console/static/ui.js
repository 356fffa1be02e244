// Small DOM helpers: every page is built from these, with no HTML strings,
// so that nothing a server or a user wrote is ever parsed as markup.

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

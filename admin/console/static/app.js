// The console's shell: sign-in, the identity switcher, navigation and the
// router (#/page/arg). Each page is a module that builds its part of the
// page from the admin API, as the signed-in agent.

import * as keys from "./keys.js";
import { call, acc, ApiError } from "./api.js";
import { h, field, form, errorBox, button, notice } from "./ui.js";
import overview from "./overview.js";
import issuers from "./issuers.js";
import { agentsPage, agentPage } from "./agents.js";
import hooks from "./hooks.js";
import { routesPage, routeTablePage } from "./routes.js";
import audit from "./audit.js";
import playground from "./playground.js";

const pages = {
  overview: { title: "Overview", build: overview },
  issuers: { title: "Issuers", build: issuers },
  users: { title: "Users", build: (ctx, id) => (id ? agentPage(ctx, "user", id) : agentsPage(ctx, "user")) },
  clients: { title: "Clients", build: (ctx, id) => (id ? agentPage(ctx, "client", id) : agentsPage(ctx, "client")) },
  hooks: { title: "Hooks", build: hooks },
  routes: { title: "Route tables", build: (ctx, name) => (name ? routeTablePage(ctx, name) : routesPage(ctx)) },
  audit: { title: "Audit", build: audit },
  check: { title: "Check playground", build: playground },
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

function route() {
  // Only #/page/arg is a page; any other hash (the skip link's) is not.
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [name, ...rest] = hash.split("/");
  return { name: name || "overview", arg: rest.map(decodeURIComponent).join("/") };
}

export const go = (hash) => {
  if (location.hash === hash) render();
  else location.hash = hash;
};

// generation counts renders: a page whose build ends after a newer one
// began is dropped, so that a slow page never covers the one asked for
// last.
let generation = 0;
const current = (gen) => gen === generation;

async function render() {
  const hash = location.hash || "#/";
  const gen = ++generation;
  delete main.dataset.rendered;
  await show(gen);
  if (!current(gen)) return;
  // Tests wait for this: the page for hash is built (its sections may
  // still be loading).
  if ((location.hash || "#/") === hash) main.dataset.rendered = hash;
}

async function show(gen) {
  const { name, arg } = route();
  let idn;
  try {
    idn = await keys.current();
  } catch (e) {
    main.replaceChildren(errorBox(e));
    return;
  }
  if (!current(gen)) return;
  renderWho(idn);
  if (!idn || name === "signin") {
    renderNav(null, !!idn);
    main.replaceChildren(...signIn(idn).filter(Boolean));
    document.title = "Sign in · Warden";
    focusMain();
    return;
  }
  const page = pages[name];
  renderNav(page ? name : null, true);
  if (!page) {
    main.replaceChildren(h("h1", {}, "Not found"), errorBox(`There is no page "${name}".`));
    return;
  }
  document.title = `${page.title} · Warden`;
  const ctx = { idn, go, refresh: render };
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    const content = await page.build(ctx, arg);
    if (!current(gen)) return;
    main.replaceChildren(...[content].flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false));
  } catch (e) {
    if (!current(gen)) return;
    main.replaceChildren(h("h1", {}, page.title), errorBox(e));
  }
  focusMain();
}

function focusMain() {
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: true });
  }
}

function renderNav(active, signedIn) {
  nav.replaceChildren(
    h("ul", {}, Object.entries(pages).map(([name, p]) =>
      h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === active ? "page" : false }, p.title)))));
  nav.hidden = !signedIn;
}

async function renderWho(idn) {
  const all = await keys.listIdentities().catch(() => []);
  if (!idn) {
    who.replaceChildren();
    return;
  }
  const sel = h("select", { id: "identity", "aria-label": "Signed in as" },
    all.map((i) => h("option", { value: i.id, selected: i.id === idn.id }, `${i.label || i.agentId} · ${i.account}`)));
  sel.addEventListener("change", async () => {
    await keys.setSetting("current", sel.value);
    render();
  });
  who.replaceChildren(
    h("label", { for: "identity", class: "who-label" }, "Signed in as"), sel,
    h("a", { href: "#/signin", class: "button-link" }, "Add identity"),
    button("Sign out", () => signOut(idn), { id: "signout", title: "Delete this identity's key from this browser" }));
}

async function signOut(idn) {
  if (!confirm(`Sign out of ${idn.label || idn.agentId}? Its key is deleted from this browser; signing in again needs a new init token.`)) return;
  await keys.forget(idn.id);
  const next = await keys.current();
  if (next) await keys.setSetting("current", next.id);
  go(next ? "#/overview" : "#/signin");
}

function signIn(idn) {
  const tokenArea = h("textarea", { name: "initToken", rows: 5, required: true, spellcheck: "false", autocomplete: "off" });
  const f = form("Sign in with an init token", [
    field("Init token", tokenArea, "From `warden user init USER`, `warden client init CLIENT`, the console's \"Mint init token\", or the root-init-token file of the first start. It is used once: this browser makes a key pair, enrolls its public key with the token and keeps the private key, which cannot be read from it."),
  ], "Sign in", async () => {
    const claims = keys.parseInitToken(tokenArea.value);
    tokenArea.value = "";
    const origin = location.origin;
    try {
      await keys.enroll(claims, async (c, body) => (await call("POST", `/v1/account/${encodeURIComponent(c.account)}/init`, { token: c.token, body })).body);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        throw new Error(`The init token was refused: it has expired, was forged, or was issued by another Warden deployment (it names ${claims.baseUrl}, account ${claims.account}; this console is ${origin}). Ask for a new one.`);
      }
      if (e instanceof ApiError && e.status === 404) {
        throw new Error("This init token has already been used: each init token enrolls one key. Ask for a new one.");
      }
      throw e;
    }
    go("#/overview");
  }, { id: "signin-form" });
  return [
    h("h1", {}, "Sign in"),
    h("p", {}, "The Warden console signs in without a password, as the CLI does: with a single-use init token of a user or client. It can then do exactly what that agent may, nothing more."),
    idn ? notice(`You are signed in as ${idn.label || idn.agentId}; this adds another identity, and the switcher at the top chooses between them.`) : null,
    f,
  ];
}

window.addEventListener("hashchange", () => {
  if (!location.hash || location.hash.startsWith("#/")) render();
});
// The skip link moves the focus to the page, and leaves the address be.
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
render();


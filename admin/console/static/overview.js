// Overview: the node's readiness, revision and lag, who is signed in, and
// how many issuers, users, clients, hooks and route tables the account has.

import { call, acc, listSome, me, ApiError } from "./api.js";
import { h, section, errorBox } from "./ui.js";

const stat = (label, value) => h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));

async function count(idn, path) {
  try {
    const { items, more } = await listSome(idn, acc(idn, path), 1000);
    return more ? `${items.length}+` : String(items.length);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return "not permitted";
    if (e instanceof ApiError && e.status === 404) return "not served";
    return "error: " + e.message;
  }
}

export default async function overview({ idn }) {
  return [
    h("h1", {}, "Overview"),
    section("This node", async () => {
      const s = (await call("GET", "/v1/status")).body;
      const ready = s.ready ? h("span", { class: "badge ok" }, "ready") : h("span", { class: "badge bad" }, "not ready");
      return [
        h("div", { class: "stats" },
          stat("Readiness", ready),
          stat("Revision", String(s.revision)),
          stat("Lag", `${(s.lagSeconds || 0).toFixed(1)} s`),
          s.hooks ? stat("Hooks attached", `${s.hooks.hooks}${s.hooks.broken ? ` (${s.hooks.broken} broken)` : ""}`) : null),
        s.ready ? null : errorBox(`Not ready: ${s.reason || "no reason given"}`),
      ];
    }),
    section("Signed in", async () => {
      const a = await me(idn);
      return h("dl", { class: "kv" },
        h("dt", {}, "Agent"), h("dd", { class: "mono" }, a.id),
        h("dt", {}, "Account"), h("dd", { class: "mono" }, idn.account),
        h("dt", {}, "Identity"), h("dd", { class: "mono" }, `${idn.issuerId} / ${idn.subject}`),
        h("dt", {}, "Grants"), h("dd", {}, ((a.access && a.access.allow) || []).map((g) => h("div", { class: "mono" }, `${g.action} on ${g.resource}`))));
    }),
    section("The account", async () => {
      const [issuers, users, clients, hooks, tables] = await Promise.all(
        ["/issuer", "/user", "/client", "/hook", "/routes"].map((p) => count(idn, p)));
      return h("div", { class: "stats" },
        stat("Issuers", issuers), stat("Users", users), stat("Clients", clients),
        stat("Hooks", hooks), stat("Route tables", tables));
    }),
  ];
}

// Audit: the account's admin calls, allowed and refused, newest first,
// with the audit route's filters.

import { call, acc } from "./api.js";
import { h, field, form, input, button, errorBox, table, fmtTime } from "./ui.js";

export default function audit(ctx) {
  const { idn } = ctx;
  const f = {
    from: input({ name: "from", value: "-1h" }), to: input({ name: "to" }),
    action: input({ name: "action", placeholder: "user:*" }), resource: input({ name: "resource", placeholder: "/account/…/user/" }),
    issuerId: input({ name: "issuerId" }), subject: input({ name: "subject" }),
  };
  const pages = [""];
  const results = h("div", { id: "audit-results" });
  // Only the answer to the latest page asked for is shown.
  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    const q = new URLSearchParams({ count: "50" });
    for (const [k, el] of Object.entries(f)) if (el.value.trim()) q.set(k, el.value.trim());
    if (pages[pages.length - 1]) q.set("next", pages[pages.length - 1]);
    results.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    try {
      const r = (await call("GET", acc(idn, `/audit?${q}`), { idn })).body;
      if (mine !== asked) return;
      const items = r.items || [];
      results.replaceChildren(
        table("Audit entries, newest first", ["Time", "Action", "Resource", "Caller", "Result"], items.map((e) => [
          fmtTime(e.timestamp), h("code", {}, e.action), h("code", {}, e.resource),
          e.issuerId ? h("span", { class: "mono" }, `${e.subject} @ ${e.issuerId}`) : h("span", { class: "hint" }, "(no valid token)"),
          e.authorized ? h("span", { class: "badge ok" }, "allowed") : h("span", { class: "badge bad" }, "refused"),
        ]), "No entries match."),
        h("div", { class: "pager" },
          pages.length > 1 ? button("Newer", () => { pages.pop(); load(); }, { class: "secondary" }) : null,
          r.next ? button("Older", () => { pages.push(r.next); load(); }, { class: "secondary" }) : null));
    } catch (e) {
      if (mine === asked) results.replaceChildren(errorBox(e));
    }
  };
  const filters = form("Filters", [
    h("div", { class: "row" },
      field("From", f.from, "-15m, -2h, -1d, a date, or Unix ms"), field("To", f.to, "empty: now"),
      field("Action", f.action, "two or three segments; a trailing * matches any last one"), field("Resource prefix", f.resource),
      field("Issuer", f.issuerId), field("Subject", f.subject, "needs the issuer")),
  ], "Search", async () => {
    pages.length = 1;
    await load();
  }, { id: "audit-filters" });
  load();
  return [h("h1", {}, "Audit"), h("p", {}, "Every admin call that needs a permission is recorded here, allowed or refused. Entries hold no token, key or body."), filters, results];
}

// Audit: the account's admin calls, allowed and refused, newest first,
// with the audit route's filters.

import { acc } from "./api.js";
import { h, field, form, input, table, fmtTime, pagedList } from "./ui.js";

export default function audit(ctx) {
  const { idn } = ctx;
  const f = {
    from: input({ name: "from", value: "-1h" }), to: input({ name: "to" }),
    action: input({ name: "action", placeholder: "user:*" }), resource: input({ name: "resource", placeholder: "/account/…/user/" }),
    issuerId: input({ name: "issuerId" }), subject: input({ name: "subject" }),
  };
  const results = pagedList({ idn, path: acc(idn, "/audit"), count: 50, filters: f, labels: ["Newer", "Older"], attrs: { id: "audit-results" },
    render: (items) => table("Audit entries, newest first", ["Time", "Action", "Resource", "Caller", "Result"], items.map((e) => [
      fmtTime(e.timestamp), h("code", {}, e.action), h("code", {}, e.resource),
      e.issuerId ? h("span", { class: "mono" }, `${e.subject} @ ${e.issuerId}`) : h("span", { class: "hint" }, "(no valid token)"),
      e.authorized ? h("span", { class: "badge ok" }, "allowed") : h("span", { class: "badge bad" }, "refused"),
    ]), "No entries match.") });
  const filters = form("Filters", [
    h("div", { class: "row" },
      field("From", f.from, "-15m, -2h, -1d, a date, or Unix ms"), field("To", f.to, "empty: now"),
      field("Action", f.action, "two or three segments; a trailing * matches any last one"), field("Resource prefix", f.resource),
      field("Issuer", f.issuerId), field("Subject", f.subject, "needs the issuer")),
  ], "Search", results.first, { id: "audit-filters" });
  results.first();
  return [h("h1", {}, "Audit"), h("p", {}, "Every admin call that needs a permission is recorded here, allowed or refused. Entries hold no token, key or body."), filters, results.box];
}

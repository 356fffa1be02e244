// The check playground: may this agent, or the holder of a pasted token,
// do ACTION on RESOURCE? The decision, its reason and the grant that
// allowed it, from the check API.

import { call } from "./api.js";
import { h, field, form, input, errorBox } from "./ui.js";
import { mint } from "./keys.js";

export default function playground(ctx) {
  const { idn } = ctx;
  const action = input({ name: "action", required: true, placeholder: "function:get" });
  const resource = input({ name: "resource", required: true, value: `/account/${idn.account}/` });
  const as = h("select", { name: "as" }, h("option", { value: "me" }, "the signed-in agent"), h("option", { value: "token" }, "a pasted token"));
  const token = h("textarea", { name: "token", rows: 3, spellcheck: "false" });
  const tokenField = field("Bearer token", token, "a token of any agent; it is sent to this Warden node only");
  tokenField.hidden = true;
  as.addEventListener("change", () => (tokenField.hidden = as.value !== "token"));
  const result = h("div", { id: "decision", "aria-live": "polite" });
  const f = form("Ask", [h("div", { class: "row" }, field("Action", action), field("Resource", resource), field("As", as)), tokenField], "Check", async () => {
    result.replaceChildren();
    const t = as.value === "token" ? token.value.trim() : await mint(idn);
    if (as.value === "token" && !t) throw new Error("Paste the token to check with, or check as the signed-in agent.");
    const d = (await call("POST", "/v1/check", { token: t, body: { action: action.value.trim(), resource: resource.value.trim() } })).body;
    result.replaceChildren(h("div", { class: "card" },
      h("div", { class: `decision ${d.allow ? "allow" : "deny"}` }, d.allow ? "Allowed" : "Denied", ` (${d.status})`),
      h("dl", { class: "kv" },
        h("dt", {}, "Reason"), h("dd", {}, d.reason || ""),
        d.agent ? [h("dt", {}, "Agent"), h("dd", { class: "mono" }, `${d.agent.type} ${d.agent.id}`)] : null,
        d.grant ? [h("dt", {}, "Allowed by"), h("dd", { class: "mono" }, `${d.grant.action} on ${d.grant.resource}`)] : null,
        h("dt", {}, "Revision"), h("dd", {}, String(d.revision)))));
  }, { id: "check-form" });
  return [h("h1", {}, "Check playground"), h("p", {}, "Ask what a service asks Warden: may the holder of this token do ACTION on RESOURCE?"), f, result];
}

// Route tables: the account's tables; one table's YAML, edited here with
// the errors of loading it shown beside it; and a request tested against
// it, as `warden routes test` does.

import { call, acc, listAll } from "./api.js";
import { h, field, form, input, button, section, errorBox, notice, table } from "./ui.js";

const tablePath = (idn, name) => acc(idn, "/routes/" + encodeURIComponent(name));

// YAML of a JSON object, as the table's author would write it. Strings
// that YAML could read as anything else are written as JSON strings,
// which YAML reads as written.
const plain = (s) => /^[A-Za-z_/][A-Za-z0-9_/.:{}$*-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(s) && !s.endsWith(":") && !s.includes(": ");
const scalar = (x) => (typeof x === "string" ? (plain(x) ? x : JSON.stringify(x)) : x === null ? "null" : String(x));
const isScalar = (x) => x === null || typeof x !== "object";
// flow is the one-line form of a scalar, an empty collection or a list of
// scalars; null when the value needs lines of its own.
function flow(v) {
  if (isScalar(v)) return scalar(v);
  if (Array.isArray(v) && v.every(isScalar)) return `[${v.map((x) => (typeof x === "string" && /[{}[\],]/.test(x) ? JSON.stringify(x) : scalar(x))).join(", ")}]`;
  if (!Array.isArray(v) && !Object.keys(v).length) return "{}";
  return null;
}
function block(v, indent) {
  if (Array.isArray(v)) {
    return v.flatMap((item) => {
      const f = flow(item);
      if (f !== null) return [`${indent}- ${f}`];
      const lines = block(item, indent + "  ");
      return [`${indent}- ${lines[0].slice(indent.length + 2)}`, ...lines.slice(1)];
    });
  }
  return Object.entries(v).flatMap(([k, val]) => {
    const f = flow(val);
    return f !== null ? [`${indent}${scalar(k)}: ${f}`] : [`${indent}${scalar(k)}:`, ...block(val, indent + "  ")];
  });
}
export const toYAML = (obj) => block(obj, "").join("\n") + "\n";

const tableYAML = (t) => {
  const { name, ...rest } = t;
  return toYAML(rest);
};

export function routesPage(ctx) {
  const { idn } = ctx;
  const list = section("Route tables of the account", async () => {
    const items = await listAll(idn, acc(idn, "/routes"));
    return table("Route tables", ["Name", "Routes"], items.map((t) => [h("a", { href: `#/routes/${encodeURIComponent(t.name)}` }, h("code", {}, t.name)), String(t.routeCount)]), "No route tables yet.");
  });
  const name = input({ name: "tableName", required: true, placeholder: "app" });
  const create = form("New route table", [field("Name", name)], "Create and edit", async () => {
    const n = name.value.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n)) throw new Error("A route table's name is letters, digits, '.', '_' and '-', starting with a letter or digit.");
    ctx.go(`#/routes/${encodeURIComponent(n)}`);
  }, { id: "new-table" });
  return [h("h1", {}, "Route tables"), h("p", {}, "A route table maps requests to security specs, for the front doors (nginx, Traefik, Caddy, Envoy, or Warden as a reverse proxy)."), list, create];
}

const example = `default: deny
routes:
  - name: read-functions
    methods: [GET]
    path: /account/{accountId}/function/{functionId}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{accountId}}/function/{{functionId}}/
`;

export async function routeTablePage(ctx, name) {
  const { idn } = ctx;
  let existing = null;
  try {
    existing = (await call("GET", tablePath(idn, name), { idn })).body;
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  const editor = h("textarea", { class: "editor", id: "table-yaml", spellcheck: "false", "aria-describedby": "table-errors" }, existing ? tableYAML(existing) : example);
  const errors = h("div", { id: "table-errors", "aria-live": "polite" });
  const showError = (e) => {
    const m = /line (\d+)/.exec(e.message);
    const lines = editor.value.split("\n");
    errors.replaceChildren(errorBox(e), m && lines[m[1] - 1] !== undefined ? h("div", { class: "line-mark" }, `${m[1]} | ${lines[m[1] - 1]}`) : null);
    if (m) {
      const at = lines.slice(0, m[1] - 1).join("\n").length + (m[1] > 1 ? 1 : 0);
      editor.setSelectionRange(at, at + lines[m[1] - 1].length);
    }
  };
  const save = form(existing ? `Edit ${name}` : `New table ${name}`, [field("YAML", editor), errors], "Save", async () => {
    errors.replaceChildren();
    try {
      await call("PUT", tablePath(idn, name), { idn, raw: editor.value, contentType: "application/yaml" });
    } catch (e) {
      showError(e);
      return;
    }
    return `Saved ${name}: every node serving it now uses this table.`;
  }, { id: "save-table" });

  const method = h("select", { name: "method" }, ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].map((m) => h("option", { value: m }, m)));
  const url = input({ name: "url", required: true, placeholder: "/account/acc-…/function/f1" });
  const token = h("textarea", { name: "token", rows: 2, spellcheck: "false", placeholder: "empty: decide as the signed-in agent" });
  const result = h("div", { id: "route-test-result", "aria-live": "polite" });
  const test = form("Test a request", [h("div", { class: "row" }, field("Method", method), field("URL", url)), field("Bearer token", token)], "Test", async () => {
    result.replaceChildren();
    const body = { method: method.value, url: url.value.trim() };
    if (token.value.trim()) body.token = token.value.trim();
    const r = (await call("POST", tablePath(idn, name) + "/test", { idn, body })).body;
    const d = r.decision || {};
    result.replaceChildren(h("div", { class: "card" },
      h("div", { class: `decision ${r.let ? "allow" : "deny"}` }, r.let ? "Let through" : "Refused", ` (${d.status})`),
      h("dl", { class: "kv" },
        h("dt", {}, "Route"), h("dd", {}, r.route === "default" ? "none matches: the table's default" : r.route || "none: the table refuses the request"),
        r.path ? [h("dt", {}, "Pattern"), h("dd", { class: "mono" }, r.path)] : null,
        h("dt", {}, "Mode"), h("dd", {}, r.mode),
        r.authentication ? [h("dt", {}, "Authentication"), h("dd", {}, r.authentication)] : null,
        h("dt", {}, "Requirements"), h("dd", {}, (r.requirements || []).length ? r.requirements.map((q) => h("div", { class: "mono" }, `${q.action} on ${q.resource}`)) : "none"),
        h("dt", {}, "Reason"), h("dd", {}, d.reason || ""),
        d.grant ? [h("dt", {}, "Grant"), h("dd", { class: "mono" }, `${d.grant.action} on ${d.grant.resource}`)] : null)));
  }, { id: "test-route" });

  const delStatus = h("div", {});
  return [
    h("p", {}, h("a", { href: "#/routes" }, "← Route tables")),
    h("h1", {}, "Route table ", h("code", {}, name)),
    existing ? null : notice("This table does not exist yet: saving creates it."),
    save,
    existing ? [test, result] : null,
    existing ? h("section", { "aria-label": "Delete" }, button("Delete this table", async () => {
      if (!confirm(`Delete the route table ${name}? Nodes serving it stop being ready.`)) return;
      try {
        await call("DELETE", tablePath(idn, name), { idn });
        ctx.go("#/routes");
      } catch (e) {
        delStatus.replaceChildren(errorBox(e));
      }
    }, { class: "danger" }), delStatus) : null,
  ];
}

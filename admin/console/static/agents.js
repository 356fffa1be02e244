// Users and clients: a filtered, paged list; add; and one agent's page,
// to edit its names, identities and grants, mint its init token, or
// delete it. A refusal that names a grant (delegation, or a guard) is
// shown next to that grant.

import { call, acc } from "./api.js";
import { h, field, form, input, button, errorBox, notice, table, copy, pagedList } from "./ui.js";
import { agentLabel } from "./keys.js";

const kinds = {
  user: { plural: "users", title: "Users", names: [["firstName", "First name"], ["lastName", "Last name"], ["primaryEmail", "Email"]] },
  client: { plural: "clients", title: "Clients", names: [["displayName", "Display name"]] },
};

const label = (a) => agentLabel(a, false) || "(no name)";

export function agentsPage(ctx, kind) {
  const k = kinds[kind];
  const filters = {};
  const filterInputs = [["name", "Name"], ...(kind === "user" ? [["email", "Email"]] : []), ["issuerId", "Identity issuer"], ["subject", "Identity subject"]]
    .map(([key, text]) => [key, field(text, (filters[key] = input({ name: key })))]);
  const results = pagedList({ idn: ctx.idn, path: acc(ctx.idn, `/${kind}`), count: 25, filters,
    render: (items) => table(`${k.title} of the account`, ["Id", "Name", ...(kind === "user" ? ["Email"] : [])],
      items.map((a) => [h("a", { href: `#/${k.plural}/${a.id}` }, h("code", {}, a.id)), label(a), ...(kind === "user" ? [a.primaryEmail || ""] : [])]),
      `No ${k.plural} match.`) });
  const filterForm = form("Filter", h("div", { class: "row" }, filterInputs.map((x) => x[1])), "Apply filters", results.first, { id: `${kind}-filters` });
  const list = h("section", { "aria-label": `${k.title} list` }, h("h2", {}, k.title), filterForm, results.box);
  results.first();
  return [h("h1", {}, k.title), list, addAgent(ctx, kind)];
}

function addAgent(ctx, kind) {
  const k = kinds[kind];
  const inputs = Object.fromEntries(k.names.map(([key]) => [key, input({ name: key, type: key === "primaryEmail" ? "email" : "text" })]));
  return form(`Add a ${kind}`, h("div", { class: "row" }, k.names.map(([key, text]) => field(text, inputs[key]))), `Add ${kind}`, async () => {
    const body = {};
    for (const [key, el] of Object.entries(inputs)) if (el.value.trim()) body[key] = el.value.trim();
    const r = await call("POST", acc(ctx.idn, `/${kind}`), { idn: ctx.idn, body });
    ctx.go(`#/${k.plural}/${r.body.id}`);
  }, { id: `add-${kind}` });
}

// refusedGrant finds the grant a refusal names.
function refusedGrant(message) {
  const m = /action '([^']*)' on resource '([^']*)'/.exec(message || "");
  return m ? { action: m[1], resource: m[2] } : null;
}

const sameGrant = (a, b) => a.action === b.action && (a.resource === b.resource || a.resource.replace(/\/?$/, "/") === b.resource.replace(/\/?$/, "/"));

export async function agentPage(ctx, kind, id) {
  const k = kinds[kind];
  const { idn } = ctx;
  const self = acc(idn, `/${kind}/${encodeURIComponent(id)}`);
  const agent = (await call("GET", self, { idn })).body;
  const grants = (agent.access && agent.access.allow) || [];
  const identities = agent.identities || [];
  // grantErrors holds refusals to show next to a grant of this page.
  const grantErrors = h("div", { role: "alert", class: "grant-errors" });

  const showRefusal = (e, fallback) => {
    const g = refusedGrant(e.message);
    const row = g && [...document.querySelectorAll("[data-grant]")].find((el) => sameGrant(JSON.parse(el.dataset.grant), g));
    if (row) {
      row.querySelectorAll(".inline-error").forEach((x) => x.remove());
      row.append(h("span", { class: "inline-error", role: "alert" }, e.message));
    } else fallback.replaceChildren(errorBox(e));
  };
  const patch = (body) => call("PATCH", self, { idn, body });
  const reload = () => ctx.refresh();

  // Names.
  const nameInputs = Object.fromEntries(k.names.map(([key]) => [key, input({ name: key, value: agent[key] || "" })]));
  const names = form("Details", h("div", { class: "row" }, k.names.map(([key, text]) => field(text, nameInputs[key]))), "Save", async () => {
    const body = {};
    for (const [key, el] of Object.entries(nameInputs)) body[key] = el.value.trim() || null;
    await patch(body);
    return "Saved.";
  }, { id: "agent-details" });

  // Identities.
  const idStatus = h("div", {});
  const idIssuer = input({ name: "identityIssuer" });
  const idSubject = input({ name: "identitySubject" });
  const identitySection = h("section", { "aria-label": "Identities" }, h("h2", {}, "Identities"),
    table("Identities: the tokens this agent is known by", ["Issuer", "Subject", ""], identities.map((i) => [
      h("code", {}, i.issuerId), h("code", {}, i.subject),
      button("Remove", async () => {
        try {
          await patch({ identities: identities.filter((x) => x !== i) });
          reload();
        } catch (e) {
          showRefusal(e, idStatus);
        }
      }, { class: "secondary", "aria-label": `Remove identity ${i.issuerId} ${i.subject}` }),
    ]), "No identities: no token is this agent's yet."),
    form("Add an identity", h("div", { class: "row" }, field("Issuer id", idIssuer), field("Subject", idSubject)), "Add identity", async () => {
      try {
        await patch({ identities: [...identities, { issuerId: idIssuer.value.trim(), subject: idSubject.value.trim() }] });
      } catch (e) {
        showRefusal(e, idStatus);
        return;
      }
      reload();
    }, { id: "add-identity" }),
    idStatus);

  // Grants.
  const grStatus = h("div", {});
  const gAction = input({ name: "grantAction", placeholder: "function:get" });
  const gResource = input({ name: "grantResource", value: `/account/${idn.account}/` });
  const pending = h("div", { class: "pending-grant" });
  const grantSection = h("section", { "aria-label": "Grants" }, h("h2", {}, "Grants"),
    grants.length ? h("table", {}, h("caption", {}, "Access grants: what this agent may do"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Action"), h("th", { scope: "col" }, "Resource"), h("th", { scope: "col" }, ""))),
      h("tbody", {}, grants.map((g) => h("tr", { dataset: { grant: JSON.stringify(g) } },
        h("td", {}, h("code", {}, g.action)), h("td", {}, h("code", {}, g.resource)),
        h("td", {}, button("Remove", async () => {
          try {
            await patch({ access: { allow: grants.filter((x) => x !== g) } });
            reload();
          } catch (e) {
            showRefusal(e, grStatus);
          }
        }, { class: "secondary", "aria-label": `Remove grant ${g.action} on ${g.resource}` })))))) : h("p", { class: "empty" }, "No grants: this agent may do nothing."),
    form("Add a grant", [h("div", { class: "row" }, field("Action", gAction, "e.g. function:get, function:*, *"), field("Resource", gResource, "a prefix: the grant covers everything under it")), pending], "Add grant", async () => {
      const g = { action: gAction.value.trim(), resource: gResource.value.trim() };
      pending.replaceChildren();
      try {
        await patch({ access: { allow: [...grants, g] } });
      } catch (e) {
        // The refusal is shown beside the grant it concerns: the one
        // being added, or one the agent already holds.
        const named = refusedGrant(e.message);
        if (!named || sameGrant(named, g)) {
          pending.replaceChildren(h("div", { class: "pending", dataset: { grant: JSON.stringify(g) } },
            h("code", {}, `${g.action} on ${g.resource}`), h("span", { class: "inline-error", role: "alert" }, e.message)));
        } else showRefusal(e, grStatus);
        return;
      }
      reload();
    }, { id: "add-grant" }),
    grStatus, grantErrors);

  // Init token.
  const initOut = h("div", {});
  const initSection = h("section", { "aria-label": "Init token" }, h("h2", {}, "Init token"),
    h("p", {}, `A single-use token, valid 8 hours, with which the ${kind} enrolls a key of its own: with \`warden init\`, or by signing in to this console.`),
    button("Mint init token", async (ev) => {
      ev.target.disabled = true;
      initOut.replaceChildren();
      try {
        const token = (await call("POST", `${self}/init`, { idn, body: { protocol: "pki", profile: {} } })).body;
        const line = `warden init '${token}'`;
        const box = h("textarea", { readonly: true, rows: 4, class: "token-box", id: "init-token", "aria-label": "Init token" }, token);
        const copyBtn = button("Copy", () => copy(token, copyBtn), { class: "secondary", id: "copy-init-token" });
        const lineBox = h("textarea", { readonly: true, rows: 3, class: "token-box", id: "init-line", "aria-label": "Command to enroll with the CLI" }, line);
        const copyLine = button("Copy", () => copy(line, copyLine), { class: "secondary" });
        initOut.replaceChildren(notice("Hand this token to its owner over a channel you trust; it is shown once."),
          field("Init token", box), copyBtn, field("Enroll with the CLI", lineBox), copyLine);
      } catch (e) {
        initOut.replaceChildren(errorBox(e));
      } finally {
        ev.target.disabled = false;
      }
    }, { id: "mint-init" }),
    initOut);

  // Delete.
  const delStatus = h("div", {});
  const del = h("section", { "aria-label": "Delete" }, h("h2", {}, "Delete"),
    button(`Delete this ${kind}`, async () => {
      if (!confirm(`Delete ${label(agent)} (${agent.id})? Its tokens stop passing at once.`)) return;
      try {
        await call("DELETE", self, { idn });
        ctx.go(`#/${k.plural}`);
      } catch (e) {
        delStatus.replaceChildren(errorBox(e));
      }
    }, { class: "danger", id: "delete-agent" }), delStatus);

  return [
    h("p", {}, h("a", { href: `#/${k.plural}` }, `← ${k.title}`)),
    h("h1", {}, `${label(agent)} `, h("code", {}, agent.id)),
    names, identitySection, grantSection, initSection, del,
  ];
}

// Issuers: list; add with an uploaded PEM or a JWKS URL; rotate a key
// (add a second, then remove the old one); delete.

import { call, acc, listAll } from "./api.js";
import { h, field, form, input, button, section, errorBox, table } from "./ui.js";

const path = (idn, id) => acc(idn, "/issuer/" + encodeURIComponent(id));

function readFile(inputEl) {
  const f = inputEl.files && inputEl.files[0];
  if (!f) return Promise.resolve("");
  if (f.size > 64 << 10) throw new Error(`${f.name} is ${f.size} bytes: a PEM public key is a few hundred.`);
  return f.text();
}

export default function issuers(ctx) {
  const { idn } = ctx;
  const list = listSection(ctx);
  return [
    h("h1", {}, "Issuers"),
    h("p", {}, "An issuer is trusted through the public keys uploaded here, or through a JWKS URL that Warden fetches when a token names one of its keys."),
    list,
    addIssuer(ctx, list),
  ];
}

function listSection(ctx) {
  const { idn } = ctx;
  return section("Trusted issuers", async (reload) => {
      const items = await listAll(idn, acc(idn, "/issuer"));
      return table("Issuers of the account", ["Issuer", "Name", "Keys", ""], items.map((iss) => [
        h("code", {}, iss.id),
        iss.displayName || "",
        keysCell(ctx, iss, reload),
        button("Delete", async (ev) => {
          if (!confirm(`Delete the issuer ${iss.id}? Tokens it signed stop passing at once.`)) return;
          try {
            await call("DELETE", path(idn, iss.id), { idn });
            reload();
          } catch (e) {
            ev.target.after(errorBox(e));
          }
        }, { class: "danger", "aria-label": `Delete issuer ${iss.id}` }),
      ]), "No issuers yet.");
  });
}

function keysCell({ idn }, iss, reload) {
  if (iss.jsonKeysUrl) return h("div", {}, "JWKS: ", h("code", {}, iss.jsonKeysUrl));
  const keys = iss.publicKeys || [];
  const status = h("div", { role: "status" });
  const patch = async (publicKeys) => {
    status.replaceChildren();
    try {
      await call("PATCH", path(idn, iss.id), { idn, body: { publicKeys } });
      reload();
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  const kid = input({ name: "keyId", placeholder: "key id" });
  const file = h("input", { type: "file", accept: ".pem,.pub,.key,text/plain" });
  return h("div", {},
    h("ul", {}, keys.map((k) => h("li", {}, h("code", {}, k.keyId), " ",
      keys.length > 1 ? button("Remove", () => patch(keys.filter((x) => x.keyId !== k.keyId)), { class: "secondary", "aria-label": `Remove key ${k.keyId} of ${iss.id}` }) : null))),
    keys.length < 3 ? h("details", {}, h("summary", {}, "Add a key (rotate)"),
      h("div", { class: "row" }, field("New key id", kid), field("Public key (PEM file)", file),
        button("Add key", async () => {
          try {
            const pem = await readFile(file);
            if (!kid.value.trim() || !pem) throw new Error("Give the new key's id and its PEM file.");
            await patch([...keys, { keyId: kid.value.trim(), publicKey: pem.trim() }]);
          } catch (e) {
            status.replaceChildren(errorBox(e));
          }
        }))) : null,
    status);
}

function addIssuer({ idn }, list) {
  const id = input({ name: "issuerId", required: true, placeholder: "https://idp.example.com" });
  const name = input({ name: "displayName" });
  const source = h("select", { name: "source" }, h("option", { value: "pem" }, "an uploaded public key (PEM)"), h("option", { value: "jwks" }, "a JWKS URL"));
  const kid = input({ name: "keyId", placeholder: "key-1" });
  const file = h("input", { type: "file", name: "publicKeyFile", accept: ".pem,.pub,.key,text/plain" });
  const pemText = h("textarea", { name: "publicKey", rows: 4, placeholder: "-----BEGIN PUBLIC KEY-----" });
  const url = input({ name: "jsonKeysUrl", placeholder: "https://idp.example.com/.well-known/jwks.json" });
  const pemPart = h("div", {}, h("div", { class: "row" }, field("Key id", kid), field("Public key file", file)), field("…or paste the PEM", pemText));
  const urlPart = h("div", { hidden: true }, field("JWKS URL", url));
  source.addEventListener("change", () => {
    pemPart.hidden = source.value !== "pem";
    urlPart.hidden = source.value !== "jwks";
  });
  return form("Add an issuer", [
    h("div", { class: "row" }, field("Issuer id (the tokens' iss)", id), field("Display name", name), field("Keys from", source)),
    pemPart, urlPart,
  ], "Add issuer", async (f) => {
    const body = {};
    if (name.value.trim()) body.displayName = name.value.trim();
    if (source.value === "jwks") body.jsonKeysUrl = url.value.trim();
    else {
      const pem = (await readFile(file)) || pemText.value;
      body.publicKeys = [{ keyId: kid.value.trim(), publicKey: pem.trim() }];
    }
    const issuerId = id.value.trim();
    await call("POST", path(idn, issuerId), { idn, body });
    f.reset();
    pemPart.hidden = false;
    urlPart.hidden = true;
    list.reload();
    return `Added the issuer ${issuerId}.`;
  }, { id: "add-issuer" });
}

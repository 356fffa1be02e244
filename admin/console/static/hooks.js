// Policy hooks: upload a WebAssembly module, set its mode and action
// prefix, see whether this node attached it or found it broken, and why.

import { call, acc, listAll } from "./api.js";
import { h, field, form, input, button, section, errorBox, table } from "./ui.js";
import { base64 } from "./keys.js";


function stateCell(hook) {
  const st = hook.status;
  if (!st) return h("span", { class: "badge warn" }, "unknown");
  if (st.state === "attached") return h("span", { class: "badge ok" }, "attached");
  if (st.state === "broken") return h("div", {}, h("span", { class: "badge bad" }, "broken"), h("span", { class: "inline-error" }, st.reason || ""));
  return h("div", {}, h("span", { class: "badge warn" }, st.state), st.reason ? h("span", { class: "hint" }, " " + st.reason) : null);
}

export default function hooks(ctx) {
  const { idn } = ctx;
  const list = section("Hooks of the account", async (reload) => {
    const items = await listAll(idn, acc(idn, "/hook"));
    return table("Policy hooks, by name", ["Name", "Mode", "Action prefix", "State", "Module", ""], items.map((hk) => [
      h("code", {}, hk.name), hk.mode, hk.actionPrefix ? h("code", {}, hk.actionPrefix) : "(every action)", stateCell(hk),
      h("span", { class: "mono" }, `${hk.size} bytes, sha256 ${String(hk.sha256 || "").slice(0, 12)}…`),
      button("Delete", async (ev) => {
        if (!confirm(`Delete the hook ${hk.name}?`)) return;
        try {
          await call("DELETE", acc(idn, "/hook/" + encodeURIComponent(hk.name)), { idn });
          reload();
        } catch (e) {
          ev.target.after(errorBox(e));
        }
      }, { class: "danger", "aria-label": `Delete hook ${hk.name}` }),
    ]), "No hooks: checks are decided by grants alone.");
  });
  const name = input({ name: "hookName", required: true, placeholder: "tenant" });
  const file = h("input", { type: "file", name: "module", accept: ".wasm,application/wasm", required: true });
  const mode = h("select", { name: "mode" }, h("option", { value: "restrict" }, "restrict: may only deny what grants allow"), h("option", { value: "decide" }, "decide: allows or denies on its own"));
  const prefix = input({ name: "actionPrefix", placeholder: "function:" });
  const upload = form("Upload a hook", [
    h("div", { class: "row" }, field("Name", name), field("Module (.wasm)", file), field("Mode", mode), field("Action prefix", prefix, "only checks of actions starting with this call the hook; empty: all")),
  ], "Upload", async (f) => {
    const mod = file.files && file.files[0];
    if (!mod) throw new Error("Choose the hook's .wasm module.");
    const bytes = new Uint8Array(await mod.arrayBuffer());
    if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new Error(`${mod.name} is not a WebAssembly module (it does not start with \\0asm).`);
    }
    const body = { module: base64(bytes), mode: mode.value };
    if (prefix.value.trim()) body.actionPrefix = prefix.value.trim();
    const hookName = name.value.trim();
    await call("PUT", acc(idn, "/hook/" + encodeURIComponent(hookName)), { idn, body });
    f.reset();
    list.reload();
    return `Stored the hook ${hookName}.`;
  }, { id: "upload-hook" });
  return [h("h1", {}, "Hooks"), h("p", {}, "Policy hooks are WebAssembly modules that take part in every check whose action they cover (docs/hooks.md)."), list, upload];
}

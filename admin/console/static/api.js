// Calls to Warden's admin and check APIs, on the console's own origin,
// each with a token the signed-in identity signs for it.

import { mint, relabel } from "./keys.js";

// ApiError is an answer that is not a success, or no answer at all
// (status 0). Its message is meant for the page.
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function explain(status, method, path, body) {
  const said = body && typeof body === "object" && body.message ? body.message : typeof body === "string" ? body.trim() : "";
  switch (status) {
    case 403:
      return said && said !== "Unauthorized"
        ? said
        : `Your agent may not do this (${method} ${path} answered 403 Unauthorized): it lacks the permission, or its key is no longer trusted.`;
    case 404:
      if (/serves checks only|does not serve checks|serves the admin API only/i.test(said)) return said;
      return said || `Not found: ${method} ${path} answered 404.`;
    case 503:
      return `Warden cannot serve this now (503): ${said || "the node is starting, or its store cannot be reached"}.`;
    case 500:
      return `Warden failed (500): ${said || "see the server's log"}.`;
    default:
      return said || `${method} ${path} answered ${status}.`;
  }
}

// call makes one API call. opts: {idn, token, body, raw, contentType}. It
// resolves to {status, body, headers}; any status of 400 or more is an
// ApiError.
export async function call(method, path, opts = {}) {
  const headers = { Accept: "application/json" };
  const token = opts.token || (opts.idn ? await mint(opts.idn) : "");
  if (token) headers.Authorization = "Bearer " + token;
  let body;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers["Content-Type"] = opts.contentType || "text/plain";
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store", redirect: "error" });
  } catch (e) {
    throw new ApiError(0, `Warden could not be reached at ${location.origin} (${e.message}). Is warden serve running?`);
  }
  const text = await resp.text();
  let parsed = text;
  if ((resp.headers.get("Content-Type") || "").includes("json") && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (resp.status >= 400) throw new ApiError(resp.status, explain(resp.status, method, path, parsed), parsed);
  return { status: resp.status, body: parsed, headers: resp.headers };
}

// Account-scoped paths.
export const acc = (idn, rest = "") => `/v1/account/${encodeURIComponent(idn.account)}${rest}`;

// listAll follows a list's pages, up to max items (more when a page
// crosses it); more says whether the list goes on.
export async function listAll(idn, path, max = 10000) {
  return (await listSome(idn, path, max)).items;
}

export async function listSome(idn, path, max) {
  const items = [];
  let next = "";
  do {
    const sep = path.includes("?") ? "&" : "?";
    const r = await call("GET", path + sep + "count=100" + (next ? "&next=" + encodeURIComponent(next) : ""), { idn });
    items.push(...(r.body.items || []));
    next = r.body.next || "";
  } while (next && items.length < max);
  return { items, more: !!next };
}

// me is the agent behind the identity.
export async function me(idn) {
  const r = await call("GET", acc(idn, "/me"), { idn });
  await relabel(idn, r.body);
  return r.body;
}

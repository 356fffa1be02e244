// The console's identities: key pairs made in this browser, enrolled
// through Warden's pki init flow, kept in IndexedDB. A private key is a
// non-extractable CryptoKey: script can sign with it, never read it. No
// token or key is put in Web Storage, a cookie or a URL.

const DB = "warden-console";
const IDS = "identities";
const SETTINGS = "settings";

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(IDS)) db.createObjectStore(IDS, { keyPath: "id" });
      if (!db.objectStoreNames.contains(SETTINGS)) db.createObjectStore(SETTINGS);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error("this browser's storage (IndexedDB) cannot be opened: " + req.error));
  });
}

async function tx(store, mode, fn) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const req = fn(t.objectStore(store));
      t.oncomplete = () => resolve(req ? req.result : undefined);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("the storage transaction was aborted"));
    });
  } finally {
    db.close();
  }
}

export const listIdentities = () => tx(IDS, "readonly", (s) => s.getAll());
export const getIdentity = (id) => tx(IDS, "readonly", (s) => s.get(id));
const putIdentity = (rec) => tx(IDS, "readwrite", (s) => s.put(rec));
export const getSetting = (k) => tx(SETTINGS, "readonly", (s) => s.get(k));
export const setSetting = (k, v) => tx(SETTINGS, "readwrite", (s) => s.put(v, k));

// forget deletes an identity and its private key from this browser.
export async function forget(id) {
  await tx(IDS, "readwrite", (s) => s.delete(id));
  if ((await getSetting("current")) === id) await setSetting("current", null);
}

// current is the identity in use, or null.
export async function current() {
  const id = await getSetting("current");
  const rec = id ? await getIdentity(id) : null;
  if (rec) return rec;
  const all = await listIdentities();
  return all[0] || null;
}

const enc = new TextEncoder();

// base64 encodes bytes, a chunk at a time: a hook's module is megabytes.
export function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const b64url = (bytes) => base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function b64urlDecode(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

const jsonB64 = (v) => b64url(enc.encode(JSON.stringify(v)));

// sign makes a compact JWS (ES256) of claims with the identity's key.
async function sign(privateKey, kid, claims) {
  const input = jsonB64({ alg: "ES256", typ: "JWT", kid }) + "." + jsonB64(claims);
  // WebCrypto's ECDSA signature is r || s, as JWS wants it.
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, enc.encode(input));
  return input + "." + b64url(new Uint8Array(sig));
}

// mint makes a short-lived access token of the identity: a fresh one for
// every call, valid five minutes.
export function mint(idn, lifetimeSeconds = 300) {
  const now = Math.floor(Date.now() / 1000);
  return sign(idn.privateKey, idn.kid, { iss: idn.issuerId, sub: idn.subject, aud: idn.audience, iat: now, exp: now + lifetimeSeconds });
}

// InitTokenError says what is wrong with a pasted init token.
export class InitTokenError extends Error {}

// parseInitToken reads an init token's claims, without verifying it (only
// the deployment that minted it can), as `warden init` does.
export function parseInitToken(raw) {
  const token = (raw || "").trim().replace(/^"|"$/g, "");
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw new InitTokenError("This is not an init token: an init token is a JWT, three base64url parts joined by dots. Paste the whole output of `warden user init` or the root-init-token file.");
  }
  let claims;
  try {
    claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
  } catch {
    throw new InitTokenError("This is not an init token: its claims are not JSON.");
  }
  const str = (o, k) => (o && typeof o[k] === "string" ? o[k] : "");
  const c = { token, agentId: str(claims, "agentId"), exp: typeof claims.exp === "number" ? claims.exp : 0 };
  const p = claims.profile;
  if ((claims.protocol === "pki" || claims.protocol === "oauth") && p && typeof p === "object") {
    c.protocol = claims.protocol;
    Object.assign(c, { account: str(p, "account"), baseUrl: str(p, "baseUrl"), issuerId: str(p, "issuerId"), subject: str(p, "subject") });
  } else {
    c.protocol = "";
    Object.assign(c, { account: str(claims, "accountId"), baseUrl: str(claims, "baseUrl"), issuerId: str(claims, "issuerId"), subject: str(claims, "subject") });
  }
  if (c.protocol === "oauth") {
    throw new InitTokenError("This is an oauth init token: it adds the identity of a token from your identity provider and enrolls no key, so the console cannot sign in with it. Ask for one made with `warden user init` (pki).");
  }
  const missing = ["agentId", "account", "baseUrl", "issuerId", "subject"].filter((k) => !c[k]);
  if (missing.length) throw new InitTokenError(`This is not a Warden init token: it lacks ${missing.join(", ")}.`);
  if (c.exp && c.exp * 1000 < Date.now()) {
    throw new InitTokenError(`This init token expired at ${new Date(c.exp * 1000).toISOString()}: init tokens live 8 hours. Ask for a new one (warden user init, or the console's "Mint init token").`);
  }
  return c;
}

function pem(der) {
  const b64 = base64(new Uint8Array(der));
  return "-----BEGIN PUBLIC KEY-----\n" + b64.match(/.{1,64}/g).join("\n") + "\n-----END PUBLIC KEY-----\n";
}

function randomHex(n) {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// enroll makes a key pair, enrolls its public key with the init token
// through post (the API's call), and keeps the identity. It returns the
// identity and the agent.
export async function enroll(initClaims, post) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error("This browser offers no WebCrypto here: the console needs a secure context (https://, or http://localhost or 127.0.0.1).");
  }
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const publicKey = pem(await crypto.subtle.exportKey("spki", pair.publicKey));
  const kid = "console-" + randomHex(6);
  const idn = {
    id: initClaims.agentId + "/" + kid,
    agentId: initClaims.agentId,
    type: initClaims.agentId.startsWith("usr-") ? "user" : "client",
    account: initClaims.account,
    audience: initClaims.baseUrl,
    issuerId: initClaims.issuerId,
    subject: initClaims.subject,
    kid,
    privateKey: pair.privateKey,
    created: new Date().toISOString(),
  };
  const body = initClaims.protocol === "pki"
    ? { protocol: "pki", accessToken: await mint(idn), publicKey }
    : { publicKey, keyId: kid };
  const agent = await post(initClaims, body);
  idn.label = agentLabel(agent);
  await putIdentity(idn);
  await setSetting("current", idn.id);
  return { idn, agent };
}

// agentLabel is an agent's name, with its id when withID.
export function agentLabel(a, withID = true) {
  if (!a) return "";
  const name = a.displayName || [a.firstName, a.lastName].filter(Boolean).join(" ") || a.primaryEmail || "";
  if (!withID) return name;
  return name ? `${name} (${a.id})` : a.id;
}

// relabel records the agent's name for the switcher.
export async function relabel(idn, agent) {
  const label = agentLabel(agent);
  if (label && label !== idn.label) {
    idn.label = label;
    await putIdentity(idn);
  }
}

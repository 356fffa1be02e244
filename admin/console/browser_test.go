package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wardenauthz/warden/admin/admintest"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sdk"
)

// -screenshots writes the main pages' screenshots to docs/console/:
// go test ./admin/console -run TestConsoleInBrowser -screenshots
var screenshots = flag.Bool("screenshots", false, "write screenshots of the main pages to docs/console/")

// browser finds a Chromium to drive, or skips saying why.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH (apt-get install chromium): the console is not tested in a browser")
	return ""
}

// session is a headless Chromium on one tab.
type session struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newSession(t *testing.T, base string) *session {
	exe := browser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	s := &session{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Skipf("Chromium (%s) does not start here: %v", exe, err)
	}
	// The page's confirmations are accepted: every later page is the
	// same document, reached by its hash.
	s.do("accept confirmations", js(`window.confirm = () => true`))
	return s
}

// do runs steps, failing the test with what the page shows when one fails
// or takes over 20 s.
func (s *session) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, s.shows())
	}
}

func (s *session) shows() string {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return text
}

// eval evaluates a script (a promise is awaited) into T.
func eval[T any](s *session, what, script string) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		s.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, s.shows())
	}
	return v
}

// js is a step that runs a script.
func js(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](script, chromedp.EvalAwaitPromise)(ctx, t)
		return chromedp.Void{}, err
	}
}

// poll is a step that waits until a script is true.
func poll(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](script, chromedp.WithPollingTimeout(15*time.Second))(ctx, t)
		return chromedp.Void{}, err
	}
}

// open shows a page of the console, by its hash.
func (s *session) open(hash string) {
	s.t.Helper()
	s.do("open "+hash, js(fmt.Sprintf(`location.hash = %s`, jsString(hash))),
		poll(fmt.Sprintf(`document.getElementById("main").dataset.rendered === %s`, jsString(hash))))
}

// waitText waits until the element sel holds text.
func waitText(sel, text string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const el = document.querySelector(%s); return !!el && el.innerText.includes(%s); })()`, jsString(sel), jsString(text)))
}

// fill sets the value of the control sel, as typing would.
func fill(sel, value string) chromedp.Action[chromedp.Void] {
	return js(fmt.Sprintf(`(() => { const el = document.querySelector(%s); if (!el) throw new Error("no " + %s); el.value = %s; el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); })()`,
		jsString(sel), jsString(sel), jsString(value)))
}

// click clicks the element sel with the mouse.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

func (s *session) value(sel string) string {
	s.t.Helper()
	return eval[string](s, "read "+sel, fmt.Sprintf(`document.querySelector(%s).value`, jsString(sel)))
}

func (s *session) shot(name string) {
	s.t.Helper()
	if !*screenshots {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// identities counts the identities kept in the browser's IndexedDB.
func (s *session) identities() int {
	s.t.Helper()
	return eval[int](s, "count identities", `new Promise((resolve, reject) => {
		const req = indexedDB.open("warden-console");
		req.onerror = () => reject(req.error);
		req.onsuccess = () => {
			const db = req.result;
			if (!db.objectStoreNames.contains("identities")) { db.close(); resolve(0); return; }
			const c = db.transaction("identities").objectStore("identities").count();
			c.onsuccess = () => { db.close(); resolve(c.result); };
			c.onerror = () => reject(c.error);
		};
	})`)
}

// TestConsoleInBrowser walks the console as a person would, in headless
// Chromium: sign in with the root's init token, add an issuer and a user
// with an identity and a grant, have a grant refused by the delegation
// rule as a weaker client, mint the user's init token, find the writes in
// the audit page, get a decision each way in the playground, and sign out.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser; skipped under -short")
	}
	if raceEnabled {
		t.Skip("drives a browser and compiles a hook: too slow under the race detector, and the console's Go side is the admin API, tested with it")
	}
	d, err := admintest.Start(t.TempDir(), admintest.Options{Wrap: func(h http.Handler) http.Handler { return contract.Wrap(t, h) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	s := newSession(t, d.URL)
	acc := d.Account

	// Not signed in: the sign-in page. A pasted token that is no init
	// token, or an expired one, is explained in the page.
	s.do("the sign-in page", waitText("main h1", "Sign in"))
	s.signIn("not a token")
	s.do("garbage refused", waitText("#signin-form .error", "This is not an init token"))
	s.signIn(unsignedJWT(map[string]any{"agentId": "usr-0000000000000001", "protocol": "pki", "exp": time.Now().Add(-time.Hour).Unix(),
		"profile": map[string]any{"baseUrl": d.URL, "account": acc, "issuerId": "x", "subject": "y"}}))
	s.do("expired refused", waitText("#signin-form .error", "This init token expired"))
	s.shot("signin")

	// The root signs in with its init token; the key is made and kept
	// in the browser.
	s.signIn(d.RootInitToken)
	s.do("overview after sign-in", waitText("main h1", "Overview"), waitText("main", "ready"), waitText("main", d.RootClient))
	if n := s.identities(); n != 1 {
		t.Fatalf("%d identities kept after signing in; want 1", n)
	}
	s.do("the account's counts", waitText("main", "Route tables"))
	s.shot("overview")

	// The same init token again: used.
	s.open("#/signin")
	s.signIn(d.RootInitToken)
	s.do("used token refused", waitText("#signin-form .error", "already been used"))

	// An issuer with an uploaded key.
	idpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idpPEM, err := sdk.PublicKeyPEM(idpKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.open("#/issuers")
	s.do("add an issuer",
		fill("#add-issuer [name=issuerId]", "https://idp.test"), fill("#add-issuer [name=displayName]", "Test IdP"),
		fill("#add-issuer [name=keyId]", "idp-1"), fill("#add-issuer [name=publicKey]", idpPEM),
		click("#add-issuer button[type=submit]"),
		waitText("#add-issuer .notice", "Added the issuer https://idp.test"),
		waitText("main table", "idp-1"))
	s.shot("issuers")

	// A user with an identity at it and a grant.
	s.open("#/users")
	s.do("add a user",
		fill("#add-user [name=firstName]", "Ada"), fill("#add-user [name=lastName]", "Lovelace"), fill("#add-user [name=primaryEmail]", "ada@example.com"),
		click("#add-user button[type=submit]"),
		waitText("main h1", "Ada Lovelace"))
	userHash := eval[string](s, "the user's page", `location.hash`)
	usr := strings.TrimPrefix(userHash, "#/users/")
	fnGrant := "/account/" + acc + "/subscription/s1/"
	s.do("add an identity and a grant",
		fill("#add-identity [name=identityIssuer]", "https://idp.test"), fill("#add-identity [name=identitySubject]", "ada"),
		click("#add-identity button[type=submit]"),
		waitText("section[aria-label=Identities] table", "ada"),
		fill("#add-grant [name=grantAction]", "function:get"), fill("#add-grant [name=grantResource]", fnGrant),
		click("#add-grant button[type=submit]"),
		waitText("section[aria-label=Grants] table", "function:get"))
	s.shot("user")

	// A weaker client, made and enrolled in the browser: it may manage
	// users but holds no function grants, so it may not hand one out.
	s.open("#/clients")
	s.do("add a client", fill("#add-client [name=displayName]", "Helpdesk"), click("#add-client button[type=submit]"), waitText("main h1", "Helpdesk"),
		fill("#add-grant [name=grantAction]", "user:*"), fill("#add-grant [name=grantResource]", "/account/"+acc+"/"),
		click("#add-grant button[type=submit]"), waitText("section[aria-label=Grants] table", "user:*"),
		click("#mint-init"), chromedp.WaitVisible(chromedp.CSS("#init-token")))
	clientInit := s.value("#init-token")
	s.open("#/signin")
	s.signIn(clientInit)
	s.do("signed in as the client", waitText("main h1", "Overview"), waitText("#who", "Helpdesk"))
	if n := s.identities(); n != 2 {
		t.Fatalf("%d identities kept; want 2", n)
	}
	s.open("#/users")
	s.do("the client adds a user", fill("#add-user [name=firstName]", "Bob"), click("#add-user button[type=submit]"), waitText("main h1", "Bob"))
	s.do("the delegation rule refuses a grant beyond the client's",
		fill("#add-grant [name=grantAction]", "function:*"), fill("#add-grant [name=grantResource]", "/account/"+acc+"/"),
		click("#add-grant button[type=submit]"),
		waitText("#add-grant .pending", "function:*"),
		waitText("#add-grant .pending .inline-error", "is not authorized to grant access to perform the action 'function:*'"))
	s.shot("delegation-refused")
	// A page the client may not see says so, in the page.
	s.open("#/issuers")
	s.do("a 403 explained", waitText("main .error", "may not do this"))

	// Back to the root: mint the user's init token.
	rootID := eval[string](s, "the root's identity", `(async () => { const m = await import("./keys.js"); const all = await m.listIdentities(); return all.find((i) => i.agentId === `+jsString(d.RootClient)+`).id; })()`)
	s.do("switch to the root", fill("#identity", rootID), waitText("#who", d.RootClient))
	s.open("#/users/" + usr)
	s.do("mint the user's init token", click("#mint-init"), chromedp.WaitVisible(chromedp.CSS("#init-token")))
	userInit, line := s.value("#init-token"), s.value("#init-line")
	if claims := jwtClaims(t, userInit); claims["agentId"] != usr {
		t.Fatalf("the user's init token names %v; want %s", claims["agentId"], usr)
	}
	if !strings.HasPrefix(line, "warden init '") || !strings.Contains(line, userInit) {
		t.Fatalf("the enroll line %q", line)
	}

	// The audit page shows the writes, and the refusal.
	s.open("#/audit")
	s.do("audit entries", waitText("#audit-results table", "user:update"), waitText("#audit-results table", "issuer:add"), waitText("#audit-results table", "refused"))
	s.shot("audit")

	// A policy hook, uploaded and attached.
	wasm := filepath.Join(t.TempDir(), "tenant.wasm")
	if err := os.WriteFile(wasm, wasmtest.Hook(t, "examples/tenant"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.open("#/hooks")
	s.do("upload a hook", fill("#upload-hook [name=hookName]", "tenant"), chromedp.SetUploadFiles(chromedp.CSS("#upload-hook [name=module]"), []string{wasm}),
		fill("#upload-hook [name=actionPrefix]", "report:"), click("#upload-hook button[type=submit]"),
		waitText("#upload-hook .notice", "Stored the hook tenant"), waitText("main table", "attached"))
	s.shot("hooks")

	// A route table: a table that does not load is explained beside the
	// editor, naming its line; a good one is saved, read back as YAML and
	// saved again, and a request is tested against it.
	s.open("#/routes")
	s.do("new table", fill("#new-table [name=tableName]", "app"), click("#new-table button[type=submit]"), waitText("main h1", "Route table app"))
	s.do("a table that does not load", fill("#table-yaml", "default: deny\nroutes:\n  - name: x\n    pathh: /x\n"), click("#save-table button[type=submit]"),
		waitText("#table-errors .error", "line 4"), waitText("#table-errors .line-mark", "pathh: /x"))
	good := "default: deny\nroutes:\n  - name: read-functions\n    methods: [GET]\n    path: /account/{accountId}/function/{functionId}\n    security:\n      authentication: required\n      authorization:\n        - action: function:get\n          resource: /account/{{accountId}}/function/{{functionId}}/\n"
	s.do("save the table", fill("#table-yaml", good), click("#save-table button[type=submit]"), waitText("#save-table .notice", "Saved app"))
	s.open("#/routes")
	s.do("the table is listed", waitText("main table", "app"))
	s.open("#/routes/app")
	s.do("read back and saved again", poll(`document.getElementById("table-yaml").value.includes("name: read-functions")`), click("#save-table button[type=submit]"), waitText("#save-table .notice", "Saved app"))
	s.do("test a request", fill("#test-route [name=url]", "/account/"+acc+"/function/f1"), click("#test-route button[type=submit]"),
		waitText("#route-test-result", "Let through"), waitText("#route-test-result", "function:get on /account/"+acc+"/function/f1/"))
	s.shot("routes")

	// The playground: as the root, allowed; with the user's token from
	// the IdP, a function it may not delete, denied.
	s.open("#/check")
	s.do("allowed as the root", fill("#check-form [name=action]", "function:get"), fill("#check-form [name=resource]", fnGrant+"fn/f1"),
		click("#check-form button[type=submit]"), waitText("#decision", "Allowed"), waitText("#decision", "* on /"))
	userToken, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: idpKey, KeyID: "idp-1", Issuer: "https://idp.test", Subject: "ada", Audience: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.do("denied with a pasted token", fill("#check-form [name=as]", "token"),
		fill("#check-form [name=token]", userToken), fill("#check-form [name=action]", "function:delete"),
		click("#check-form button[type=submit]"), waitText("#decision", "Denied"), waitText("#decision", "403"))
	s.shot("playground")

	// Every control on the main pages has a label, and the keyboard
	// reaches the navigation.
	for _, p := range []string{"#/overview", "#/issuers", "#/users", "#/users/" + usr, "#/clients", "#/hooks", "#/routes", "#/audit", "#/check"} {
		s.open(p)
		unlabelled := eval[[]string](s, "labels on "+p, `[...document.querySelectorAll("input, select, textarea")].filter((el) => el.type !== "hidden" && !el.labels.length && !el.getAttribute("aria-label")).map((el) => el.name || el.id || el.outerHTML)`)
		if len(unlabelled) > 0 {
			t.Errorf("%s: controls without a label: %q", p, unlabelled)
		}
	}
	var focused []string
	s.open("#/overview")
	s.do("start from the top", js(`document.activeElement.blur(); window.scrollTo(0, 0)`))
	for range 4 {
		s.do("tab", chromedp.KeyEvent("\t"))
		name := eval[string](s, "focused", `document.activeElement.innerText || document.activeElement.getAttribute("aria-label") || document.activeElement.tagName`)
		focused = append(focused, strings.TrimSpace(name))
	}
	if !strings.Contains(strings.Join(focused, "|"), "Skip to the page") {
		t.Errorf("tabbing from the top reaches %q; want the skip link first", focused)
	}
	// The skip link moves the focus to the page and keeps the page.
	if where := eval[string](s, "skip", `document.querySelector(".skip").click(); new Promise((r) => setTimeout(() => r(location.hash + " " + document.activeElement.id + " " + document.querySelector("main h1").innerText), 200))`); where != "#/overview main Overview" {
		t.Errorf("after the skip link: %q; want the overview, focus on main", where)
	}

	// Signing out deletes the key: one identity is left, the client's.
	s.open("#/overview")
	s.do("sign out", click("#signout"), poll(`document.querySelectorAll("#identity option").length === 1`), waitText("#who", "Helpdesk"))
	if n := s.identities(); n != 1 {
		t.Fatalf("%d identities after signing out one of two; want 1", n)
	}
	s.do("sign out again", click("#signout"), waitText("main h1", "Sign in"))
	if n := s.identities(); n != 0 {
		t.Fatalf("%d identities after signing out of all; want 0", n)
	}

	// An init token of another deployment is refused, saying so.
	other, err := admintest.Start(t.TempDir(), admintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s.signIn(other.RootInitToken)
	s.do("foreign token refused", waitText("#signin-form .error", "issued by another Warden deployment"))

	// A store that cannot be reached, then a node that cannot: each is
	// said to be so in the page.
	d.StopStore()
	s.signIn(userInit)
	s.do("no store", waitText("#signin-form .error", "Warden cannot serve this now (503)"), waitText("#signin-form .error", "store"))
	d.Close()
	s.signIn(userInit)
	s.do("no node", waitText("#signin-form .error", "could not be reached"))
}

func (s *session) signIn(token string) {
	s.t.Helper()
	s.do("sign in", chromedp.WaitVisible(chromedp.CSS("#signin-form")),
		fill("#signin-form [name=initToken]", token), click("#signin-form button[type=submit]"))
}

func unsignedJWT(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is no JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

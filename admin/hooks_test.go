package admin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/storage"
)

func guest(t *testing.T, dir string) []byte {
	t.Helper()
	if raceEnabled {
		// wazero's compiler is Go code: under the race detector a
		// module takes longer to compile than the store timeout.
		t.Skip("compiles WebAssembly modules, too slow under the race detector; TestHookSwapUnderLoad in sidecar covers concurrency")
	}
	return wasmtest.Hook(t, dir)
}

func hookBody(wasm []byte, extra string) string {
	return fmt.Sprintf(`{"module":%q%s}`, base64.StdEncoding.EncodeToString(wasm), extra)
}

// checkAs runs a check on the test's resource with token.
func (e *env) checkAs(token, action string) model.Decision {
	e.t.Helper()
	r := e.must("POST", "/v1/check", token, fmt.Sprintf(`{"action":%q,"resource":"/account/%s/subscription/sub-0000000000000001/"}`, action, testAcc))
	var d model.Decision
	r.json(e.t, &d)
	return d
}

// TestHookLifecycle: a hook registered through the admin API is stored by
// digest, attached at once on this node, replaced, and deleted with its
// module.
func TestHookLifecycle(t *testing.T) {
	e := newEnv(t)
	_, tok := e.agent("user", "alice", perm("function:*", "/account/"+testAcc+"/"))
	path := "/v1/account/" + testAcc + "/hook/tenant"
	if d := e.checkAs(tok, "function:get"); !d.Allow {
		t.Fatalf("before the hook: %+v", d)
	}

	tenant := guest(t, "examples/tenant")
	r := e.must("PUT", path, e.rootTk, hookBody(tenant, `,"actionPrefix":"function:"`))
	sum := sha256.Sum256(tenant)
	var h model.Hook
	r.json(t, &h)
	want := model.Hook{Name: "tenant", Mode: "restrict", ActionPrefix: "function:", SHA256: hex.EncodeToString(sum[:]), Size: len(tenant)}
	// The write answers once this node runs the module: attached.
	if h.Status == nil || *h.Status != (model.HookStatus{State: model.HookAttached}) {
		t.Fatalf("PUT answered the status %+v; want attached", h.Status)
	}
	if h.Status = nil; h != want {
		t.Fatalf("PUT answered %+v; want %+v", h, want)
	}
	r.revision(t)
	// The write answered once the hook was attached here.
	if d := e.checkAs(tok, "function:get"); d.Allow || !strings.Contains(d.Reason, `hook "tenant" denied: the token's tenant is not `+testAcc) {
		t.Fatalf("with the tenant hook: %+v", d)
	}
	if d := e.checkAs(tok, "function:put"); d.Allow {
		t.Fatalf("with the tenant hook: %+v", d)
	}
	e.must("GET", path, e.rootTk, "").json(t, &h)
	if h.Status == nil || h.Status.State != model.HookAttached {
		t.Fatalf("GET answered the status %+v; want attached", h.Status)
	}
	if h.Status = nil; h != want {
		t.Fatalf("GET answered %+v; want %+v", h, want)
	}
	// The module is in chunks under its digest.
	chunks := 0
	for k := range e.storeDump() {
		if strings.HasPrefix(k, e.layout.HookModules(testAcc, "tenant")+want.SHA256+"/") {
			chunks++
		}
	}
	if wantChunks := (len(tenant) + storage.HookChunkSize - 1) / storage.HookChunkSize; chunks != wantChunks {
		t.Fatalf("%d chunks stored; want %d", chunks, wantChunks)
	}

	// Replaced by a hook that allows, in decide mode: the old module's
	// chunks go.
	allow := guest(t, "testdata/guests/allow")
	e.must("PUT", path, e.rootTk, hookBody(allow, `,"mode":"decide"`))
	if d := e.checkAs(tok, "user:get"); !d.Allow || !strings.Contains(d.Reason, `hook "tenant" allowed: saw user:get`) {
		t.Fatalf("with the decide hook: %+v", d)
	}
	for k := range e.storeDump() {
		if strings.Contains(k, want.SHA256) {
			t.Fatalf("the replaced module's chunk %s is still stored", k)
		}
	}

	r = e.do("DELETE", path, e.rootTk, "")
	if r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	r.revision(t)
	if d := e.checkAs(tok, "user:get"); d.Allow {
		t.Fatalf("after DELETE: %+v", d)
	}
	if r := e.do("GET", path, e.rootTk, ""); r.status != 404 || r.message() != "The hook 'tenant' does not exist" {
		t.Fatalf("GET after DELETE: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", path, e.rootTk, ""); r.status != 404 {
		t.Fatalf("DELETE again: %d %s", r.status, r.body)
	}
	for k := range e.storeDump() {
		if strings.Contains(k, "/"+storage.KindHook) {
			t.Fatalf("%s is left after DELETE", k)
		}
	}
}

// TestHookBadInput: every bad request is refused with a message naming the
// problem, and leaves the store as it was.
func TestHookBadInput(t *testing.T) {
	e := newEnv(t)
	_, weak := e.agent("user", "weak", perm("hook:get", "/account/"+testAcc+"/"))
	allow := guest(t, "testdata/guests/allow")
	wrongABI := guest(t, "testdata/guests/wrongabi")
	base := "/v1/account/" + testAcc + "/hook/"
	huge := `{"module":"` + strings.Repeat("A", maxHookBody) + `"}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"bad name", "PUT", base + "Bad.Name", e.rootTk, hookBody(allow, ""), 400, `"hookName" with value "Bad.Name" fails to match the required pattern`},
		{"no permission", "PUT", base + "h", weak, hookBody(allow, ""), 403, "Unauthorized"},
		{"no token", "GET", base + "h", "", "", 403, "Unauthorized"},
		{"no module", "PUT", base + "h", e.rootTk, `{"mode":"decide"}`, 400, `"module" is required`},
		{"module not a string", "PUT", base + "h", e.rootTk, `{"module":42}`, 400, `"module" must be a string`},
		{"module not base64", "PUT", base + "h", e.rootTk, `{"module":"%%%"}`, 400, `"module" must be the module's bytes in standard base64`},
		{"empty module", "PUT", base + "h", e.rootTk, `{"module":""}`, 400, `"module" is not allowed to be empty`},
		{"not wasm", "PUT", base + "h", e.rootTk, hookBody([]byte("not a module"), ""), 400, `"module" is not a hook Warden can run: hook "h": not a WebAssembly module`},
		{"wrong ABI", "PUT", base + "h", e.rootTk, hookBody(wrongABI, ""), 400, "speaks hook ABI version 2; this Warden speaks version 1"},
		{"bad mode", "PUT", base + "h", e.rootTk, hookBody(allow, `,"mode":"veto"`), 400, `"mode" must be one of [restrict, decide]`},
		{"unknown field", "PUT", base + "h", e.rootTk, hookBody(allow, `,"routes":[]`), 400, `"routes" is not allowed`},
		{"not JSON", "PUT", base + "h", e.rootTk, `{"module":`, 400, "the request body is not a valid JSON object"},
		{"too large", "PUT", base + "h", e.rootTk, huge, 413, "the request body is larger than"},
		{"missing", "GET", base + "h", e.rootTk, "", 404, "The hook 'h' does not exist"},
		{"delete missing", "DELETE", base + "h", e.rootTk, "", 404, "The hook 'h' does not exist"},
	}
	before := e.storeDump()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			if r.status != tc.status || !strings.Contains(r.message(), tc.msg) {
				t.Fatalf("%d %s; want %d with %q", r.status, r.body, tc.status, tc.msg)
			}
			if after := e.storeDump(); !maps.Equal(before, after) {
				t.Fatal("the store changed")
			}
		})
	}
}

// TestHookHotSwap: while a hook is replaced again and again, every check
// answers, and each with one of the two modules.
func TestHookHotSwap(t *testing.T) {
	e := newEnv(t)
	_, tok := e.agent("user", "alice", perm("function:*", "/account/"+testAcc+"/"))
	path := "/v1/account/" + testAcc + "/hook/swap"
	mods := [][]byte{guest(t, "testdata/guests/allow"), guest(t, "testdata/guests/minimal")}
	e.must("PUT", path, e.rootTk, hookBody(mods[0], ""))
	var stop atomic.Bool
	var checks, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				d := e.eng.Check(context.Background(), tok, "function:get", "/account/"+testAcc+"/x/")
				checks.Add(1)
				if !d.Allow {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, d.Reason)
				}
			}
		})
	}
	for i := range 6 {
		e.must("PUT", path, e.rootTk, hookBody(mods[(i+1)%2], ""))
	}
	time.Sleep(50 * time.Millisecond) // past the retired hooks' linger
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d checks failed during the swaps; the first: %v", failed.Load(), checks.Load(), firstFailure.Load())
	}
	if checks.Load() == 0 {
		t.Fatal("no check ran")
	}
}

// TestBrokenHookDenies: a hook whose module is not in the store denies
// every check it applies to, and says why.
func TestBrokenHookDenies(t *testing.T) {
	e := newEnv(t)
	_, tok := e.agent("user", "alice", perm("function:*", "/account/"+testAcc+"/"))
	rec := storage.HookRecord{Mode: model.HookRestrict, SHA256: strings.Repeat("0", 64), Size: 10, Chunks: 1}
	resp, err := etcdClient.Put(context.Background(), e.layout.Hook(testAcc, "ghost"), storage.Encode(rec))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hooks.WaitRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	d := e.checkAs(tok, "function:get")
	if d.Allow || !strings.Contains(d.Reason, `hook "ghost" could not be loaded: its module has 0 of its 1 chunks in the store`) {
		t.Fatalf("%+v", d)
	}
	if st := e.hooks.Status(); st.Broken != 1 || st.LoadErrors != 1 {
		t.Fatalf("status %+v", st)
	}
	// The hook's record says it is broken, and why.
	var h model.Hook
	e.must("GET", "/v1/account/"+testAcc+"/hook/ghost", e.rootTk, "").json(t, &h)
	if h.Status == nil || h.Status.State != model.HookBroken || !strings.Contains(h.Status.Reason, "its module has 0 of its 1 chunks in the store") {
		t.Fatalf("the broken hook's status: %+v", h.Status)
	}
	// A record that does not decode denies too.
	resp, err = etcdClient.Put(context.Background(), e.layout.Hook(testAcc, "ghost"), "not json")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.hooks.WaitRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if d := e.checkAs(tok, "function:get"); d.Allow || !strings.Contains(d.Reason, `hook "ghost" could not be loaded: its record in the store does not decode`) {
		t.Fatalf("%+v", d)
	}
}

// TestHookList: GET …/hook lists the account's hooks in name order, a page
// at a time, to callers holding hook:get.
func TestHookList(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"c", "a", "b"} {
		rec := storage.HookRecord{Mode: model.HookRestrict, SHA256: strings.Repeat(name, 64), Size: 1, Chunks: 1}
		if _, err := etcdClient.Put(context.Background(), e.layout.Hook(testAcc, name), storage.Encode(rec)); err != nil {
			t.Fatal(err)
		}
	}
	// A hook of another account is not listed.
	if _, err := etcdClient.Put(context.Background(), e.layout.Hook(otherAcc, "z"), storage.Encode(storage.HookRecord{SHA256: "x"})); err != nil {
		t.Fatal(err)
	}
	path := "/v1/account/" + testAcc + "/hook"
	var page struct {
		Items []model.Hook
		Next  string
	}
	e.must("GET", path+"?count=2", e.rootTk, "").json(t, &page)
	if len(page.Items) != 2 || page.Items[0].Name != "a" || page.Items[1].Name != "b" || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}
	next := page.Next
	page.Next = ""
	e.must("GET", path+"?count=2&next="+next, e.rootTk, "").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "c" || page.Items[0].SHA256 != strings.Repeat("c", 64) || page.Next != "" {
		t.Fatalf("second page %+v", page)
	}
	if r := e.do("GET", path+"?next=bogus", e.rootTk, ""); r.status != 400 {
		t.Fatalf("a bad cursor: %d %s", r.status, r.body)
	}
	_, weak := e.agent("user", "weak", perm("hook:put", "/account/"+testAcc+"/"))
	if r := e.do("GET", path, weak, ""); r.status != 403 {
		t.Fatalf("without hook:get: %d %s", r.status, r.body)
	}
}

// TestHookCap: an account holds at most 16 hooks; a 17th is refused, and
// nothing is stored for it, while replacing one of the 16 is allowed.
func TestHookCap(t *testing.T) {
	e := newEnv(t)
	for i := range maxHooksPerAccount {
		rec := storage.HookRecord{Mode: model.HookRestrict, SHA256: strings.Repeat("0", 64), Size: 1, Chunks: 1}
		if _, err := etcdClient.Put(context.Background(), e.layout.Hook(testAcc, fmt.Sprintf("h%02d", i)), storage.Encode(rec)); err != nil {
			t.Fatal(err)
		}
	}
	mod := guest(t, "testdata/guests/minimal")
	before := e.storeDump()
	r := e.do("PUT", "/v1/account/"+testAcc+"/hook/extra", e.rootTk, hookBody(mod, ""))
	if r.status != 400 || !strings.Contains(r.body, "The account holds 16 hooks, the most it may; remove one before adding 'extra'") {
		t.Fatalf("a 17th hook: %d %s", r.status, r.body)
	}
	if !maps.Equal(before, e.storeDump()) {
		t.Fatal("the refused hook changed the store")
	}
	e.must("PUT", "/v1/account/"+testAcc+"/hook/h03", e.rootTk, hookBody(mod, ""))
}

// TestHookDeleteReleases: deleting a hook closes its instances, so their
// memory is released; the manager's status counts both.
func TestHookDeleteReleases(t *testing.T) {
	e := newEnv(t)
	path := "/v1/account/" + testAcc + "/hook/mini"
	e.must("PUT", path, e.rootTk, hookBody(guest(t, "testdata/guests/minimal"), ""))
	st := e.hooks.Status()
	if st.Instances == 0 || st.MemoryBytes == 0 || st.ByAccount[testAcc] != 1 {
		t.Fatalf("with the hook attached: %+v", st)
	}
	e.must("DELETE", path, e.rootTk, "")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st = e.hooks.Status()
		if st.Instances == 0 && st.MemoryBytes == 0 && st.ByAccount[testAcc] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the delete: %+v; want no instances and no memory", st)
		}
	}
}

package sidecar

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// TestHooks: hooks restrict or decide over the built-in decision, by action
// prefix, with the decision context they are documented to receive.
func TestHooks(t *testing.T) {
	if raceEnabled {
		t.Skip("compiles five modules, slow under the race detector; TestHookSwapUnderLoad covers concurrency")
	}
	f := newFixture(t, Config{})
	rt, err := policywasm.NewRuntime(context.Background(), policywasm.Config{PoolSize: 2, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	tenant := testkit.LoadHook(t, rt, "examples/tenant")
	hours := testkit.LoadHook(t, rt, "examples/businesshours")
	ipallow := testkit.LoadHook(t, rt, "examples/ipallow")
	allow := testkit.LoadHook(t, rt, "testdata/guests/allow")
	trap := testkit.LoadHook(t, rt, "testdata/guests/trap")

	plain := f.tok("rsa1", testkit.AliceSub)
	// A token with a tenant claim needs a custom mint: the SDK's has none.
	tenantTok := testkit.RawTok(t, jwt.SigningMethodRS256, testkit.Key(t, "rsa1"), map[string]any{"kid": "rsa1"}, jwt.MapClaims{
		"iss": testkit.Issuer, "sub": testkit.AliceSub, "aud": testkit.Aud, "exp": f.clock.Now().Add(time.Hour).Unix(), "tenant": testkit.Acc})
	now := f.clock.Now().UTC()
	inHours := now.Weekday() != time.Saturday && now.Weekday() != time.Sunday && now.Hour() >= 9 && now.Hour() < 17
	res := testkit.AliceRes + "fn"

	tests := []struct {
		name   string
		hooks  []AttachedHook
		token  string
		action string
		allow  bool
		status int
		reason string
	}{
		{"no hooks", nil, plain, "function:get", true, 200, "allowed"},
		{"restrict: the hook allows", []AttachedHook{{Hook: allow}}, plain, "function:get", true, 200, "allowed"},
		{"restrict: the tenant hook denies a token without the tenant", []AttachedHook{{Hook: tenant}}, plain, "function:get", false, 403,
			`hook "examples/tenant" denied: the token's tenant is not ` + testkit.Acc},
		{"restrict: the tenant hook allows the tenant's token", []AttachedHook{{Hook: tenant}}, tenantTok, "function:get", true, 200, "allowed"},
		{"restrict never widens", []AttachedHook{{Hook: allow}}, plain, "function:put", false, 403, "no grant allows"},
		{"decide: the hook's answer stands", []AttachedHook{{Hook: allow, Mode: HookDecide}}, plain, "function:put", true, 200, `hook "testdata/guests/allow" allowed: saw function:put`},
		{"an action prefix that does not apply", []AttachedHook{{Hook: tenant, ActionPrefix: "user:"}}, plain, "function:get", true, 200, "allowed"},
		{"an action prefix that applies", []AttachedHook{{Hook: tenant, ActionPrefix: "function:"}}, plain, "function:get", false, 403, "tenant"},
		{"a failing hook fails closed", []AttachedHook{{Hook: trap}}, plain, "function:get", false, 403, `hook "testdata/guests/trap" trapped`},
		{"business hours by the engine's clock", []AttachedHook{{Hook: hours}}, plain, "function:get", inHours, 0, ""},
		{"no source address in-process", []AttachedHook{{Hook: ipallow}}, plain, "function:get", false, 403, "no source address to check"},
		{"a hook of another account does not apply", []AttachedHook{{Hook: tenant, Account: "acc-0000000000000000"}}, plain, "function:get", true, 200, "allowed"},
		{"a hook of the resource's account applies", []AttachedHook{{Hook: tenant, Account: testkit.Acc, Name: "tenant"}}, plain, "function:get", false, 403,
			`hook "tenant" denied: the token's tenant is not ` + testkit.Acc},
		{"a broken hook denies", []AttachedHook{{Name: "gone", Broken: "its module is missing"}}, plain, "function:get", false, 403,
			`hook "gone" could not be loaded: its module is missing`},
		{"a broken restrict hook takes nothing from a denial", []AttachedHook{{Name: "gone", Broken: "x"}}, plain, "function:put", false, 403, "no grant allows"},

		// Composition: decide hooks first, then restrict hooks; a failure or
		// a restrict denial is final, whatever the order of the names.
		{"a restrict denial is final over a later decide allow", []AttachedHook{{Hook: tenant, Name: "a"}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:get", false, 403, `hook "a" denied`},
		{"a restrict denial is final over an earlier decide allow", []AttachedHook{{Hook: allow, Name: "a", Mode: HookDecide}, {Hook: tenant, Name: "b"}}, plain, "function:put", false, 403, `hook "b" denied`},
		{"a restrict failure is final", []AttachedHook{{Hook: trap, Name: "a"}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:get", false, 403, `trapped`},
		{"a broken restrict hook is final", []AttachedHook{{Name: "a", Broken: "its module is missing"}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:get", false, 403, `hook "a" could not be loaded`},
		{"a decide failure is final", []AttachedHook{{Hook: trap, Name: "a", Mode: HookDecide}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:put", false, 403, `trapped`},
		{"a broken decide hook is final", []AttachedHook{{Name: "a", Broken: "x", Mode: HookDecide}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:get", false, 403, `hook "a" could not be loaded`},
		{"the last decide hook stands", []AttachedHook{{Hook: tenant, Name: "a", Mode: HookDecide}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:get", true, 200, `hook "b" allowed`},
		{"a decide allow, then every restrict hook allowing", []AttachedHook{{Hook: allow, Name: "a"}, {Hook: allow, Name: "b", Mode: HookDecide}}, plain, "function:put", true, 200, `hook "b" allowed`},
		{"no token: a decide allow, then a broken restrict hook", []AttachedHook{{Hook: allow, Name: "a", Mode: HookDecide}, {Name: "b", Broken: "x"}}, "", "function:get", false, 403, `hook "b" could not be loaded`},
		{"no token: a decide allow, then a restrict denial", []AttachedHook{{Hook: allow, Name: "a", Mode: HookDecide}, {Hook: tenant, Name: "b"}}, "", "function:get", false, 403, `hook "b" denied`},
		{"no token: a decide allow stands alone", []AttachedHook{{Hook: allow, Name: "a", Mode: HookDecide}}, "", "function:get", true, 200, `hook "a" allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.eng.SetHooks(tc.hooks); err != nil {
				t.Fatal(err)
			}
			d := f.check(tc.token, tc.action, res)
			if d.Allow != tc.allow || tc.status != 0 && d.Status != tc.status || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision %+v; want allow %v status %d reason %q", d, tc.allow, tc.status, tc.reason)
			}
		})
	}

	// Hooks a route chose by name run whatever their action prefix; one
	// that is not attached in the account denies, with or without others.
	for _, tc := range []struct {
		name   string
		hooks  []AttachedHook
		route  []string
		action string
		allow  bool
		reason string
	}{
		{"a route's hook runs outside its action prefix", []AttachedHook{{Hook: tenant, Name: "tenant", ActionPrefix: "user:"}}, []string{"tenant"}, "function:get", false, `hook "tenant" denied`},
		{"without the route, the prefix rules", []AttachedHook{{Hook: tenant, Name: "tenant", ActionPrefix: "user:"}}, nil, "function:get", true, "allowed"},
		{"a route's hook that allows", []AttachedHook{{Hook: allow, Name: "allow", ActionPrefix: "user:"}}, []string{"allow"}, "function:get", true, "allowed"},
		{"a route's hook not attached, no hooks at all", nil, []string{"tenant"}, "function:get", false, `the route names hook "tenant", which is not attached in account "` + testkit.Acc + `"`},
		{"a route's hook not attached, others are", []AttachedHook{{Hook: allow, Name: "allow"}}, []string{"allow", "tenant"}, "function:get", false, `the route names hook "tenant"`},
		{"a route's hook of another account", []AttachedHook{{Hook: allow, Name: "allow", Account: "acc-0000000000000000"}}, []string{"allow"}, "function:get", false, `the route names hook "allow"`},
		{"a route's hook over a denial keeps the denial", []AttachedHook{{Hook: allow, Name: "allow"}}, []string{"allow"}, "function:put", false, "no grant allows"},
	} {
		t.Run("route/"+tc.name, func(t *testing.T) {
			if _, err := f.eng.SetHooks(tc.hooks); err != nil {
				t.Fatal(err)
			}
			reqs := []model.Permission{{Action: tc.action, Resource: res}}
			d := f.eng.Decide(context.Background(), f.store.Snapshot(), plain, reqs, RequestInfo{Hooks: tc.route})
			if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision %+v; want allow %v reason %q", d.Decision, tc.allow, tc.reason)
			}
			if !tc.allow && strings.Contains(tc.reason, "not attached") && d.Class != ClassHookFailed {
				t.Fatalf("class %s, want %s", d.Class, ClassHookFailed)
			}
		})
	}

	// An allowing decision carries the headers of the hooks that allowed,
	// for the request upstream; a denial carries none.
	for _, tc := range []struct {
		name   string
		hooks  []AttachedHook
		action string
		header string
	}{
		{"a restrict hook allows", []AttachedHook{{Hook: allow}}, "function:get", "allow"},
		{"a decide hook allows", []AttachedHook{{Hook: allow, Mode: HookDecide}}, "function:put", "allow"},
		{"a restrict hook denies after a decide allow", []AttachedHook{{Hook: allow, Name: "a", Mode: HookDecide}, {Hook: tenant, Name: "b"}}, "function:get", ""},
		{"no hooks", nil, "function:get", ""},
	} {
		if _, err := f.eng.SetHooks(tc.hooks); err != nil {
			t.Fatal(err)
		}
		if d := f.decide(plain, tc.action, res); d.Headers["X-Hook"] != tc.header || tc.header == "" && d.Headers != nil {
			t.Errorf("%s: headers %v; want X-Hook %q", tc.name, d.Headers, tc.header)
		}
	}

	// The decision's class, and the hooks' timings.
	classes := []struct {
		name   string
		hooks  []AttachedHook
		action string
		class  ReasonClass
	}{
		{"restrict allows: the grant's class", []AttachedHook{{Hook: allow}}, "function:get", ClassGranted},
		{"decide allows over no grant", []AttachedHook{{Hook: allow, Mode: HookDecide}}, "function:put", ClassHookAllowed},
		{"decide allows over a grant", []AttachedHook{{Hook: allow, Mode: HookDecide}}, "function:get", ClassGranted},
		{"a hook denies", []AttachedHook{{Hook: tenant}}, "function:get", ClassHookDenied},
		{"a hook traps", []AttachedHook{{Hook: trap}}, "function:get", ClassHookFailed},
		{"a broken hook", []AttachedHook{{Name: "gone", Broken: "x"}}, "function:get", ClassHookFailed},
		{"restrict over a denial keeps its class", []AttachedHook{{Hook: tenant}}, "function:put", ClassNoGrant},
	}
	for _, tc := range classes {
		t.Run("class/"+tc.name, func(t *testing.T) {
			if _, err := f.eng.SetHooks(tc.hooks); err != nil {
				t.Fatal(err)
			}
			if class := f.decide(plain, tc.action, res).Class; class != tc.class {
				t.Fatalf("class %s, want %s", class, tc.class)
			}
		})
	}
	if _, err := f.eng.SetHooks([]AttachedHook{{Hook: allow, Name: "allow", Account: testkit.Acc}, {Hook: tenant, Name: "tenant"}}); err != nil {
		t.Fatal(err)
	}
	f.check(plain, "function:get", res)
	f.check(plain, "function:get", res)
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	timed := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() == "warden_hook_duration_seconds" {
			for _, m := range mf.Metric {
				timed[m.Label[0].GetValue()+"/"+m.Label[1].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if len(timed) != 2 || timed[testkit.Acc+"/allow"] != 2 || timed["/tenant"] != 2 {
		t.Fatalf("hook timings %v; want the two attached hooks, 2 calls each, and no detached ones", timed)
	}
	lintClean(t, f.reg)

	if _, err := f.eng.SetHooks([]AttachedHook{{Hook: allow, Mode: "maybe"}}); err == nil {
		t.Fatal("a bad mode was accepted")
	}
	if _, err := f.eng.SetHooks([]AttachedHook{{Name: "empty"}}); err == nil {
		t.Fatal("a hook without a module was accepted")
	}
}

// TestHookInput: the decision context is JSON with the documented fields.
func TestHookInput(t *testing.T) {
	t.Parallel()
	d := model.Decision{Allow: true, Status: 200, Reason: "allowed", Agent: model.AgentRef{ID: testkit.AliceID, Type: model.AgentUser},
		Grant: model.Permission{Action: "function:*", Resource: "/a/"}}
	tok := "h." + "eyJzdWIiOiJhbGljZSIsInQiOlsxLDJdfQ" + ".s"
	p := Principal{ent: &entry{}, token: tok}
	in := hookInput(hookRequest{principal: p, action: "function:get\x01", resource: "a/b", source: "10.0.0.1", now: 1700000000}, d)
	var got struct {
		Now      int64
		Request  struct{ Action, Resource, SourceIP string }
		Claims   map[string]any
		Agent    model.AgentRef
		Grant    model.Permission
		Decision struct {
			Allow  bool
			Status int
			Reason string
		}
	}
	if err := json.Unmarshal(in, &got); err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	if got.Now != 1700000000 || got.Request.Action != "function:get\x01" || got.Request.Resource != "/a/b/" || got.Request.SourceIP != "10.0.0.1" ||
		got.Claims["sub"] != "alice" || got.Agent.ID != testkit.AliceID || got.Grant.Action != "function:*" || !got.Decision.Allow {
		t.Fatalf("%+v", got)
	}
	// The claims are the principal's, decoded once: a later check of the
	// same cached token does not decode it again.
	if c := p.ent.claims.Load(); c == nil || !strings.Contains(string(*c), `"sub":"alice"`) {
		t.Fatalf("the principal kept no claims: %v", c)
	}
	p.token = "h.e30.s"
	if in := hookInput(hookRequest{principal: p}, d); !strings.Contains(string(in), `"claims":{"sub":"alice"`) {
		t.Fatalf("the claims were decoded again: %s", in)
	}
	// No verified token: no claims.
	if in := hookInput(hookRequest{principal: p}, model.Decision{Status: 401}); !strings.Contains(string(in), `"claims":{}`) {
		t.Fatalf("%s", in)
	}
}

// TestHookSwapUnderLoad: checks running while the hook set is swapped all
// get an answer from one set or the other, and none fails.
func TestHookSwapUnderLoad(t *testing.T) {
	f := newFixture(t, Config{})
	rt, err := policywasm.NewRuntime(context.Background(), policywasm.Config{PoolSize: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	allow := testkit.LoadHook(t, rt, "testdata/guests/allow")
	sets := [][]AttachedHook{nil, {{Hook: allow}}, {{Hook: allow, Mode: HookDecide}}, {{Hook: allow, ActionPrefix: "function:"}}}
	tok := f.tok("rsa1", testkit.AliceSub)
	stop := make(chan struct{})
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d := f.check(tok, "function:get", testkit.AliceRes); !d.Allow {
					errs <- d.Reason
					return
				}
			}
		}()
	}
	for i := range 200 {
		if _, err := f.eng.SetHooks(sets[i%len(sets)]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a check failed during the swaps: %s", e)
	}
}

// TestHookSetDrain: the channel SetHooks returns closes only once no check
// holds a set replaced so far, the older ones included, so that a hook is
// never closed under a check running it.
func TestHookSetDrain(t *testing.T) {
	t.Parallel()
	e, err := New(state.New(), Config{DefaultAccount: testkit.Acc, Audiences: []string{"aud"}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	closed := func(ch <-chan struct{}, wait time.Duration) bool {
		select {
		case <-ch:
			return true
		case <-time.After(wait):
			return false
		}
	}
	if _, err := e.SetHooks([]AttachedHook{{Name: "h", Broken: "unloaded"}}); err != nil {
		t.Fatal(err)
	}
	held, ref := e.acquireHooks() // a check in flight with the first set
	if held == nil {
		t.Fatal("no set to hold")
	}
	first, err := e.SetHooks([]AttachedHook{{Name: "h", Broken: "unloaded"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.SetHooks(nil)
	if err != nil {
		t.Fatal(err)
	}
	if closed(first, 20*drainPoll) || closed(second, 20*drainPoll) {
		t.Fatal("a replaced set drained while a check held it")
	}
	held.refs.Release(ref)
	if !closed(first, 10*time.Second) || !closed(second, 10*time.Second) {
		t.Fatal("the replaced sets did not drain once released")
	}
	if s, _ := e.acquireHooks(); s != nil {
		t.Fatal("a set was held with no hooks attached")
	}
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	if len(e.draining) != 0 {
		t.Fatalf("%d drained sets are still kept", len(e.draining))
	}
}

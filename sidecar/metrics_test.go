package sidecar

import (
	"github.com/wardenauthz/warden/internal/testkit"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// TestReasonClasses: every kind of decision lands in its class, the label
// of warden_decisions_total and the decision log.
func TestReasonClasses(t *testing.T) {
	f := newFixture(t, Config{})
	now := f.clock.Now()
	tests := []struct {
		name     string
		token    string
		action   string
		resource string
		class    ReasonClass
	}{
		{"a grant allows", f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes, ClassGranted},
		{"no token", "", "function:get", testkit.AliceRes, ClassMissingToken},
		{"expired", f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Now, s.Lifetime = now.Add(-2*time.Hour), time.Hour }), "function:get", testkit.AliceRes, ClassExpiredToken},
		{"not valid yet", testkit.RawTok(t, jwt.SigningMethodRS256, testkit.Key(t, "rsa1"), map[string]any{"kid": "rsa1"}, jwt.MapClaims{
			"iss": testkit.Issuer, "sub": testkit.AliceSub, "aud": testkit.Aud, "exp": now.Add(2 * time.Hour).Unix(), "nbf": now.Add(time.Hour).Unix()}), "function:get", testkit.AliceRes, ClassExpiredToken},
		{"bad signature", f.tok("rsa1", testkit.AliceSub)[:40] + "x" + f.tok("rsa1", testkit.AliceSub)[41:], "function:get", testkit.AliceRes, ClassInvalidToken},
		{"malformed", "not.a.token", "function:get", testkit.AliceRes, ClassInvalidToken},
		{"wrong audience", f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Audience = "elsewhere" }), "function:get", testkit.AliceRes, ClassInvalidToken},
		{"unknown identity", f.tok("rsa1", "nobody"), "function:get", testkit.AliceRes, ClassUnknownIdentity},
		{"inline permissions broader than the grants", f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) {
			s.Permissions = []model.Permission{{Action: "*", Resource: "/"}}
		}), "function:get", testkit.AliceRes, ClassInlinePermissions},
		{"no grant", f.tok("rsa1", testkit.AliceSub), "function:put", testkit.AliceRes, ClassNoGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := f.decide(tc.token, tc.action, tc.resource)
			if class := d.Class; class != tc.class {
				t.Fatalf("class %s, want %s (decision %+v)", class, tc.class, d)
			}
			if d.Allow != d.Class.Allows() {
				t.Fatalf("class %s says allow %v, the decision %v", d.Class, d.Class.Allows(), d.Allow)
			}
		})
	}
}

// TestCheckMetrics: checks are counted by result and class, timed, and the
// exposition passes the linter.
func TestCheckMetrics(t *testing.T) {
	f := newFixture(t, Config{TimingSample: 1})
	tok := f.tok("rsa1", testkit.AliceSub)
	f.check(tok, "function:get", testkit.AliceRes)     // miss, granted
	f.check(tok, "function:get", testkit.AliceRes)     // hit, granted
	f.check(tok, "function:put", testkit.AliceRes)     // hit, no grant
	f.check("", "function:get", testkit.AliceRes)      // missing token
	f.check("x.y.z", "function:get", testkit.AliceRes) // miss, invalid

	const want = `
# HELP warden_decisions_total Checks decided, by result (allow or deny), reason class and mode: enforce, or dry-run for a route table's dry-run routes (counted as decided, though let through).
# TYPE warden_decisions_total counter
warden_decisions_total{mode="enforce",reason="expired_token",result="deny"} 0
warden_decisions_total{mode="enforce",reason="granted",result="allow"} 2
warden_decisions_total{mode="enforce",reason="hook_allowed",result="allow"} 0
warden_decisions_total{mode="enforce",reason="hook_denied",result="deny"} 0
warden_decisions_total{mode="enforce",reason="hook_failed",result="deny"} 0
warden_decisions_total{mode="enforce",reason="inline_permissions",result="deny"} 0
warden_decisions_total{mode="enforce",reason="invalid_token",result="deny"} 1
warden_decisions_total{mode="enforce",reason="missing_token",result="deny"} 1
warden_decisions_total{mode="enforce",reason="no_grant",result="deny"} 1
warden_decisions_total{mode="enforce",reason="unknown_identity",result="deny"} 0
# HELP warden_token_cache_entries Verified tokens in the token cache, expired ones included.
# TYPE warden_token_cache_entries gauge
warden_token_cache_entries 1
# HELP warden_token_cache_evictions_total Verified tokens dropped from the full token cache to make room.
# TYPE warden_token_cache_evictions_total counter
warden_token_cache_evictions_total 0
# HELP warden_token_cache_hits_total Checks whose token was found verified in the token cache.
# TYPE warden_token_cache_hits_total counter
warden_token_cache_hits_total 2
# HELP warden_token_cache_misses_total Checks whose token was not in the token cache (or had expired there).
# TYPE warden_token_cache_misses_total counter
warden_token_cache_misses_total 2
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "warden_decisions_total", "warden_token_cache_hits_total",
		"warden_token_cache_misses_total", "warden_token_cache_evictions_total", "warden_token_cache_entries"); err != nil {
		t.Fatal(err)
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != "warden_check_duration_seconds" {
			continue
		}
		found = true
		h := mf.Metric[0].GetHistogram()
		if h.GetSampleCount() != 5 || h.GetSampleSum() <= 0 {
			t.Fatalf("check duration: count %d sum %g; want 5 timed checks", h.GetSampleCount(), h.GetSampleSum())
		}
		if h.GetSchema() != 3 || len(h.PositiveSpan) == 0 || len(h.Bucket) == 0 || h.Bucket[0].GetUpperBound() != 1e-6 {
			t.Fatalf("check duration is not both native (schema 3) and classic from 1µs: %v", h)
		}
	}
	if !found {
		t.Fatal("no warden_check_duration_seconds")
	}
	lintClean(t, f.reg)
}

// TestTimingSample: with the default sample, every check is counted and
// about one in 16 timed.
func TestTimingSample(t *testing.T) {
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", testkit.AliceSub)
	const n = 16 * 400
	for range n {
		f.check(tok, "function:get", testkit.AliceRes)
	}
	if got := f.eng.metrics.decisions.Value(int(ClassGranted)); got != n {
		t.Fatalf("%d checks counted, want %d", got, n)
	}
	// The count is binomial(6400, 1/16): mean 400, sd about 19.
	if timed := f.eng.metrics.checks.Snapshot().Count; timed < 300 || timed > 500 {
		t.Fatalf("%d checks of %d timed; want about %d", timed, n, n/16)
	}
}

func TestNoRegistererNoMetrics(t *testing.T) {
	e, err := New(newFixture(t, Config{}).store, Config{Audiences: []string{testkit.Aud}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if e.metrics != nil {
		t.Fatal("an engine without a Registerer records metrics")
	}
	if _, err := New(e.state, Config{Audiences: []string{testkit.Aud}, TimingSample: -1}, Deps{}); err == nil {
		t.Fatal("a negative timing sample was accepted")
	}
}

func lintClean(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sidecar"
)

// hookEngine is an engine over a small state with hooks attached, its
// clock on a weekday at 10:00 UTC (inside the business-hours example's
// hours).
func hookEngine(b *testing.B, dirs []string, mode string) *sidecar.Engine {
	b.Helper()
	rt, err := policywasm.NewRuntime(context.Background(), policywasm.Config{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	var hooks []sidecar.AttachedHook
	for _, d := range dirs {
		h, err := rt.Load(context.Background(), d, wasmtest.Hook(b, d))
		if err != nil {
			b.Fatal(err)
		}
		hooks = append(hooks, sidecar.AttachedHook{Hook: h, Mode: mode})
	}
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e, err := sidecar.New(small(), sidecar.Config{DefaultAccount: account, Audiences: []string{audience}},
		sidecar.Deps{Now: func() time.Time { return monday10 }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.SetHooks(hooks); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkCheckMinimalHook: a cached-token check with one hook that
// allows (restrict mode). Target: at most BenchmarkCheckCachedToken + 5 µs.
func BenchmarkCheckMinimalHook(b *testing.B) {
	e := hookEngine(b, []string{"testdata/guests/minimal"}, sidecar.HookRestrict)
	tok := mint("RS256", 0)
	ctx := context.Background()
	mustAllow(b, e.Check(ctx, tok, "function:get", resource(0)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d := e.Check(ctx, tok, "function:get", resource(0)); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkCheckExampleHooks: a cached-token check through the three
// example hooks (tenant claim, business hours, source allow-list), each
// evaluated (decide mode runs every hook). Target: at most
// BenchmarkCheckCachedToken + 20 µs.
func BenchmarkCheckExampleHooks(b *testing.B) {
	e := hookEngine(b, []string{"examples/tenant", "examples/businesshours", "examples/ipallow"}, sidecar.HookDecide)
	// A token with the tenant claim the tenant example checks.
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": issuer, "sub": subject(0), "aud": audience, "exp": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), "tenant": account,
	})
	t.Header["kid"] = "RS256"
	tok, err := t.SignedString(signer("RS256"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e.Check(ctx, tok, "function:get", resource(0))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// The in-process check has no source address, so the allow-list
		// example denies: the benchmark measures the three evaluations.
		e.Check(ctx, tok, "function:get", resource(0))
	}
}

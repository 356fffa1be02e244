package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
)

const (
	account  = "acc-0123456789abcdef"
	issuer   = "https://issuer.bench"
	audience = "http://warden.bench"
	// grantsPerAgent is the same in every benchmark, so that the only thing
	// the Grants benchmarks vary is the total size of the state.
	grantsPerAgent = 10
)

var (
	keysOnce  sync.Once
	benchKeys map[string]crypto.Signer
)

func signer(name string) crypto.Signer {
	keysOnce.Do(func() {
		r, _ := rsa.GenerateKey(rand.Reader, 2048)
		e, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		benchKeys = map[string]crypto.Signer{"RS256": r, "ES256": e, "EdDSA": ed}
	})
	return benchKeys[name]
}

func pemOf(k crypto.Signer) string {
	s, err := sdk.PublicKeyPEM(k.Public())
	if err != nil {
		panic(err)
	}
	return s
}

func agentID(i int) string  { return fmt.Sprintf("usr-%016x", i) }
func subject(i int) string  { return fmt.Sprintf("subject-%d", i) }
func resource(i int) string { return fmt.Sprintf("/account/%s/subscription/sub-%016x/", account, i) }
func grants(i int) []model.Permission {
	g := make([]model.Permission, grantsPerAgent)
	for j := range g {
		// The matching grant is the last one: the check walks them all.
		g[j] = model.Permission{Action: fmt.Sprintf("function:op%d", j), Resource: resource(i)}
	}
	g[grantsPerAgent-1] = model.Permission{Action: "function:*", Resource: resource(i)}
	return g
}

// newState returns a store with the issuer (all three keys uploaded) and
// agents agents of grantsPerAgent grants each.
func newState(agents int) *state.DB {
	st := state.New()
	const chunk = 10_000
	rev := int64(1)
	b := &state.Batch{Revision: rev}
	b.PutAccount(account)
	var pks []model.PublicKey
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		pks = append(pks, model.PublicKey{KeyID: alg, PublicKey: pemOf(signer(alg))})
	}
	b.PutIssuer(account, model.Issuer{ID: issuer, PublicKeys: pks})
	for i := 0; i < agents; i++ {
		b.PutAgent(model.Agent{ID: agentID(i), Type: model.AgentUser, Account: account,
			Identities: []model.Identity{{IssuerID: issuer, Subject: subject(i)}}, Grants: grants(i)})
		if b.Len() >= chunk {
			if _, err := st.Apply(b); err != nil {
				panic(err)
			}
			rev++
			b = &state.Batch{Revision: rev}
		}
	}
	if _, err := st.Apply(b); err != nil {
		panic(err)
	}
	return st
}

func newEngine(b *testing.B, st *state.DB, cacheSize int) *sidecar.Engine {
	return newEngineWith(b, st, sidecar.Config{TokenCacheSize: cacheSize}, sidecar.Deps{})
}

func newEngineWith(b *testing.B, st *state.DB, cfg sidecar.Config, deps sidecar.Deps) *sidecar.Engine {
	cfg.DefaultAccount, cfg.Audiences = account, []string{audience}
	e, err := sidecar.New(st, cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func mint(alg string, i int) string {
	t, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer(alg), KeyID: alg, Issuer: issuer,
		Subject: subject(i), Audience: audience, Lifetime: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	return t
}

func mustAllow(b *testing.B, d model.Decision) {
	if !d.Allow {
		b.Fatalf("denied: %+v", d)
	}
}

var small = sync.OnceValue(func() *state.DB { return newState(10) })

// BenchmarkCheckCachedToken is the in-process check of a token seen before.
func BenchmarkCheckCachedToken(b *testing.B) {
	benchCached(b, newEngine(b, small(), 0))
}

// BenchmarkCheckCachedTokenMetrics is BenchmarkCheckCachedToken recording
// metrics, as warden serve does: the difference is their cost. Target: at
// most 5% more.
func BenchmarkCheckCachedTokenMetrics(b *testing.B) {
	benchCached(b, newEngineWith(b, small(), sidecar.Config{}, sidecar.Deps{Registerer: prometheus.NewRegistry()}))
}

// BenchmarkCheckCachedTokenTimeEvery is BenchmarkCheckCachedTokenMetrics
// timing every check rather than one in 16 (--check-timing-sample 1).
func BenchmarkCheckCachedTokenTimeEvery(b *testing.B) {
	benchCached(b, newEngineWith(b, small(), sidecar.Config{TimingSample: 1}, sidecar.Deps{Registerer: prometheus.NewRegistry()}))
}

func benchCached(b *testing.B, e *sidecar.Engine) {
	tok, ctx, res := mint("RS256", 3), context.Background(), resource(3)+"fn/x"
	mustAllow(b, e.Check(ctx, tok, "function:get", res))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mustAllow(b, e.Check(ctx, tok, "function:get", res))
	}
}

// BenchmarkCheckCachedTokenParallel is the same on every core at once.
func BenchmarkCheckCachedTokenParallel(b *testing.B) {
	e := newEngine(b, small(), 0)
	tok, res := mint("RS256", 3), resource(3)+"fn/x"
	mustAllow(b, e.Check(context.Background(), tok, "function:get", res))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			mustAllow(b, e.Check(ctx, tok, "function:get", res))
		}
	})
}

// uncachedPool is how many distinct tokens an uncached benchmark rotates
// through; with a token cache of 16 entries, every check misses.
const uncachedPool = 64

func benchUncached(b *testing.B, alg string) {
	e := newEngine(b, small(), 16)
	toks := make([]string, uncachedPool)
	for i := range toks {
		// Distinct tokens for the same agent: other lifetimes.
		t, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer(alg), KeyID: alg, Issuer: issuer,
			Subject: subject(3), Audience: audience, Lifetime: time.Duration(24*3600+i) * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = t
	}
	ctx, res := context.Background(), resource(3)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		mustAllow(b, e.Check(ctx, toks[i%uncachedPool], "function:get", res))
		i++
	}
}

// BenchmarkCheckUncachedRS256 is a check whose token must be verified.
func BenchmarkCheckUncachedRS256(b *testing.B) { benchUncached(b, "RS256") }

// BenchmarkCheckUncachedES256 is a check whose token must be verified.
func BenchmarkCheckUncachedES256(b *testing.B) { benchUncached(b, "ES256") }

// BenchmarkCheckUncachedEdDSA is a check whose token must be verified.
func BenchmarkCheckUncachedEdDSA(b *testing.B) { benchUncached(b, "EdDSA") }

// cacheMemoryTokens is how many tokens BenchmarkTokenCacheMemory caches.
const cacheMemoryTokens = 20_000

var cacheMemoryToks = sync.OnceValue(func() []string {
	toks := make([]string, cacheMemoryTokens)
	for i := range toks {
		t, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer("EdDSA"), KeyID: "EdDSA", Issuer: issuer,
			Subject: subject(i % 10), Audience: audience, Lifetime: time.Duration(24*3600+i) * time.Second})
		if err != nil {
			panic(err)
		}
		toks[i] = t
	}
	return toks
})

// BenchmarkTokenCacheMemory is what a verified token costs in the token
// cache: the live heap and the heap objects it adds, not counting the
// token's own bytes (the cache's key), which the caller's string holds
// here; token-B is their length. Each iteration fills a fresh cache.
func BenchmarkTokenCacheMemory(b *testing.B) {
	toks := cacheMemoryToks()
	ctx := context.Background()
	var heap, objects float64
	n := 0
	for b.Loop() {
		e := newEngine(b, small(), 2*cacheMemoryTokens)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, tok := range toks {
			mustAllow(b, e.Check(ctx, tok, "function:get", resource(i%10)))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(e)
		heap += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / cacheMemoryTokens
		objects += float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / cacheMemoryTokens
		n++
	}
	b.ReportMetric(heap/float64(n), "heap-B/token")
	b.ReportMetric(objects/float64(n), "objects/token")
	b.ReportMetric(float64(len(toks[0])), "token-B")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVerifyFloorRS256 is golang-jwt's own parse and verify of the same
// kind of token, with the key at hand: the floor of an uncached check.
func BenchmarkVerifyFloorRS256(b *testing.B) {
	tok := mint("RS256", 3)
	pub := signer("RS256").Public()
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(audience))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := parser.ParseWithClaims(tok, jwt.MapClaims{}, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// The Grants benchmarks rotate through grantsCheckTokens distinct cached
// tokens of grantsCheckAgents agents spread evenly across the state. Both
// are the same for every state size, so that the only thing that varies is
// the total number of grants. (The 100-grant state has 10 agents.)
const (
	grantsCheckTokens = 1000
	grantsCheckAgents = 10
)

func benchGrants(b *testing.B, st *state.DB, agents int) {
	e := newEngine(b, st, 0)
	type probe struct{ tok, res string }
	probes := make([]probe, grantsCheckTokens)
	step := agents / grantsCheckAgents
	for i := range probes {
		a := (i % grantsCheckAgents) * step
		// Distinct lifetimes make distinct tokens for agents that repeat.
		tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer("EdDSA"), KeyID: "EdDSA", Issuer: issuer,
			Subject: subject(a), Audience: audience, Lifetime: time.Duration(24*3600+i) * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		probes[i] = probe{tok, resource(a) + "fn"}
		mustAllow(b, e.Check(context.Background(), probes[i].tok, "function:get", probes[i].res))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		p := probes[i%grantsCheckTokens]
		mustAllow(b, e.Check(ctx, p.tok, "function:get", p.res))
		i++
	}
}

var (
	state100 = sync.OnceValue(func() *state.DB { return newState(100 / grantsPerAgent) })
	state1M  = sync.OnceValue(func() *state.DB { return newState(1_000_000 / grantsPerAgent) })
)

// BenchmarkCheckGrants100 checks cached tokens of many agents on a state of
// 100 grants in all.
func BenchmarkCheckGrants100(b *testing.B) { benchGrants(b, state100(), 100/grantsPerAgent) }

// BenchmarkCheckGrants1M checks cached tokens of many agents on a state of
// 1M grants across 100k agents.
func BenchmarkCheckGrants1M(b *testing.B) { benchGrants(b, state1M(), 1_000_000/grantsPerAgent) }

// benchResolve measures what a check does on a new snapshot: the agent's
// resolution through memdb and the grant match, without the memo.
func benchResolve(b *testing.B, st *state.DB, agents int) {
	snap := st.Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		a := (i * 7919) % agents
		ag, ok := snap.AgentByIdentity(account, issuer, subject(a))
		if !ok {
			b.Fatal("agent not found")
		}
		if _, ok := model.Covers(ag.Grants, "function:get", resource(a)); !ok {
			b.Fatal("not covered")
		}
		i++
	}
}

// BenchmarkResolveGrants100 is agent resolution plus grant match in memdb on
// a state of 100 grants.
func BenchmarkResolveGrants100(b *testing.B) { benchResolve(b, state100(), 100/grantsPerAgent) }

// BenchmarkResolveGrants1M is the same on 1M grants across 100k agents.
func BenchmarkResolveGrants1M(b *testing.B) { benchResolve(b, state1M(), 1_000_000/grantsPerAgent) }

// BenchmarkMetricsOverhead measures what recording metrics adds to a
// cached-token check, robustly on a noisy machine: it alternates blocks of
// checks on an engine without metrics and one with them, so both see the
// same interference, and reports both costs and their ratio. Target: at
// most 5%.
func BenchmarkMetricsOverhead(b *testing.B) { metricsOverhead(b, 1) }

// BenchmarkMetricsOverheadParallel is the same with a goroutine per core,
// where cores contend for the counters' cache lines.
func BenchmarkMetricsOverheadParallel(b *testing.B) { metricsOverhead(b, runtime.GOMAXPROCS(0)) }

func metricsOverhead(b *testing.B, workers int) {
	off := newEngine(b, small(), 0)
	on := newEngineWith(b, small(), sidecar.Config{}, sidecar.Deps{Registerer: prometheus.NewRegistry()})
	tok, ctx, res := mint("RS256", 3), context.Background(), resource(3)+"fn/x"
	mustAllow(b, off.Check(ctx, tok, "function:get", res))
	mustAllow(b, on.Check(ctx, tok, "function:get", res))
	const block = 2000 // checks per worker per block
	var tOff, tOn time.Duration
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n < b.N {
		for i, e := range []*sidecar.Engine{off, on} {
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range block {
						if d := e.Check(ctx, tok, "function:get", res); !d.Allow {
							b.Error(d.Reason)
							return
						}
					}
				}()
			}
			wg.Wait()
			if i == 0 {
				tOff += time.Since(start)
			} else {
				tOn += time.Since(start)
			}
		}
		n += 2 * block * workers
	}
	checks := float64(n / 2)
	b.ReportMetric(float64(tOff.Nanoseconds())/checks, "off-ns/check")
	b.ReportMetric(float64(tOn.Nanoseconds())/checks, "on-ns/check")
	b.ReportMetric(100*(float64(tOn)/float64(tOff)-1), "overhead-%")
}

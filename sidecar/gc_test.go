package sidecar

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testkit"
)

// BenchmarkGCWithCachedTokens is what the collector pays for the token
// cache: a full collection (runtime.GC, the mark work a p99 meets) with 0,
// 100 000 and 1 000 000 verified tokens cached, each as a check leaves it
// (an entry resolved to its agent), with the live heap per token. The
// tokens are the real token's bytes made distinct, so that the figures do
// not wait on a million signatures.
func BenchmarkGCWithCachedTokens(b *testing.B) {
	for _, n := range []int{0, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			if n > 0 && testing.Short() {
				b.Skip("fills a large cache")
			}
			f := newFixture(b, Config{TokenCacheSize: n + 16})
			tok := f.tok("rsa1", testkit.AliceSub)
			if d := f.check(tok, "function:get", testkit.AliceRes+"fn"); !d.Allow {
				b.Fatal(d)
			}
			now := f.clock.Now()
			snap := f.store.Snapshot()
			proto, ok := f.eng.cache.Get(testkit.Acc, tok, now)
			if !ok {
				b.Fatal("the token is not cached")
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n {
				t := fmt.Sprintf("%s%012d", tok[:len(tok)-12], i)
				// The subject starts as the token's own copy, as decoding
				// its claims leaves it, and is shared as a check shares it.
				ent := &entry{account: proto.account, issuer: proto.issuer, subject: strings.Clone(proto.subject), exp: proto.exp, nbf: proto.nbf,
					digest: proto.digest, verifiedIn: proto.verifiedIn}
				res, agent := f.eng.resolveAgent(snap, ent)
				shareSubject(agent, ent)
				ent.memo.Store(res)
				f.eng.cache.Put(testkit.Acc, t, ent, time.Unix(ent.exp, 0), now)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			// Reported after the loop: ResetTimer drops reported metrics.
			if n > 0 {
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-B/token")
				b.ReportMetric(float64(int64(after.HeapObjects)-int64(before.HeapObjects))/float64(n), "objects/token")
			}
			b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
			runtime.KeepAlive(f)
		})
	}
}

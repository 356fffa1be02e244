package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/bench/internal/load"
	"github.com/wardenauthz/warden/sdk/model"
)

// The soak (-soak D): Warden alone, at 80% of the most it answers, for D,
// with a mix of requests whose answers are known in advance, and admin
// writes in between. It counts errors and wrong decisions (targets: none)
// and reads Warden's resident memory once the warm-up is over and at the
// end (target: less than 10% growth).

// The mix, by request index modulo 20.
const (
	mixAllow   = "cached token, allowed"
	mixDeny    = "cached token, action not granted (403)"
	mixFresh   = "fresh token, allowed"
	mixInvalid = "tampered signature (401)"
	mixNone    = "no token (401)"
)

func mixKind(i int) string {
	switch i % 20 {
	case 14, 15:
		return mixDeny
	case 16:
		return mixFresh
	case 17:
		return mixInvalid
	case 18:
		return mixNone
	}
	return mixAllow
}

// soakResult is what the soak measured.
type soakResult struct {
	rate                       float64
	res                        load.Result
	wrong                      int64
	writesOK, writesFailed     int64
	rssAfterWarmup, rssAtEnd   int64 // bytes
	perKind                    map[string]int
	warmup, duration, maxProbe time.Duration
	maxThroughput, closedMax   float64
	cacheAfterWarmup           cacheState
	cacheAtEnd                 cacheState
}

// cacheState is what Warden's metrics say of its token cache.
type cacheState struct{ entries, evictions int64 }

// cacheFigures reads the token cache's size and evictions from Warden's
// metrics; zero when it cannot.
func cacheFigures(ctx context.Context, diag string) cacheState {
	var cs cacheState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+diag+"/metrics", nil)
	if err != nil {
		return cs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cs
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "warden_token_cache_entries":
			cs.entries = int64(v)
		case "warden_token_cache_evictions_total":
			cs.evictions = int64(v)
		}
	}
	return cs
}

// soakCacheSize bounds Warden's token cache in the soak, so that fresh
// tokens fill it during the warm-up: after it, the cache evicts as it takes
// tokens, and its size no longer grows, so memory growth is what leaks.
const soakCacheSize = 10_000

// soakProbeTokens is the pool of fresh tokens for measuring the maximum:
// it wraps, but a token comes back long after the cache dropped it.
const soakProbeTokens = 20_000

func runSoak(ctx context.Context, c config, wardenBin, work string) error {
	w, userKey, err := startPopulated(ctx, wardenBin, work, "--token-cache-size", strconv.Itoa(soakCacheSize))
	if err != nil {
		return err
	}
	defer w.stop()
	aud := w.baseURL
	cached, err := mintTokens(userKey, aud, users, nil)
	if err != nil {
		return err
	}
	// Fresh tokens for measuring the maximum; the soak mints its own once
	// it knows how many it sends.
	fresh, err := mintFresh(userKey, aud, soakProbeTokens)
	if err != nil {
		return err
	}

	sr := soakResult{duration: c.soak, maxProbe: c.duration, perKind: map[string]int{}}
	request := func(tok string, action string, i int) []byte {
		body, _ := json.Marshal(map[string]string{"action": action, "resource": checkResource(i)})
		return load.PostJSON(w.addr, "/v1/check", tok, body)
	}
	allow, deny, invalid, none := make([][]byte, users), make([][]byte, users), make([][]byte, users), make([][]byte, users)
	for i, tok := range cached {
		allow[i] = request(tok, checkAction, i)
		deny[i] = request(tok, "user:delete", i) // the users hold function:* only
		tampered := []byte(tok)
		tampered[len(tampered)-2] ^= 1 // a signature bit, past the last base64 character's padding bits
		invalid[i] = request(string(tampered), checkAction, i)
		none[i] = request("", checkAction, i)
	}
	// Each fresh request takes the next fresh token: in the soak itself
	// none is sent twice.
	var wrong, nextFresh atomic.Int64
	want := map[string][]byte{mixAllow: []byte(`"allow":true`), mixFresh: []byte(`"allow":true`), mixDeny: []byte(`"status":403`),
		mixInvalid: []byte(`"status":401`), mixNone: []byte(`"status":401`)}
	t := load.Target{
		Dial: load.HTTP(w.addr),
		Request: func(i int) []byte {
			switch mixKind(i) {
			case mixDeny:
				return deny[i%users]
			case mixFresh:
				k := int(nextFresh.Add(1)) % len(fresh)
				return request(fresh[k], checkAction, k)
			case mixInvalid:
				return invalid[i%users]
			case mixNone:
				return none[i%users]
			}
			return allow[i%users]
		},
		Expect: func(i, status int, body []byte) bool {
			if status == 200 && !bytes.Contains(body, want[mixKind(i)]) {
				wrong.Add(1)
				return false
			}
			return status == 200
		},
	}
	for i := range 20 {
		sr.perKind[mixKind(i)]++
	}

	// The most Warden answers, with the soak's own mix, as the soak sends
	// it: an open loop (its pacing costs the generator more than a
	// closed loop's, on the cores it shares with Warden).
	if sr.maxThroughput, sr.closedMax, err = soakMaximum(ctx, c, t); err != nil {
		return err
	}
	if wrong.Load() > 0 {
		return fmt.Errorf("measuring the most Warden answers: %d wrong decisions", wrong.Load())
	}
	sr.rate = 0.8 * sr.maxThroughput
	// The warm-up lasts until fresh tokens have filled the cache half as
	// much again, and at least five warm-ups.
	freshRate := sr.rate * float64(sr.perKind[mixFresh]) / 20
	sr.warmup = max(c.warmup*5, time.Duration(1.5*soakCacheSize/freshRate*float64(time.Second)).Round(time.Second))
	if fresh, err = mintFresh(userKey, aud, int(freshRate*(sr.warmup+sr.duration).Seconds()*1.05)+100); err != nil {
		return err
	}
	nextFresh.Store(0)
	progress("Warden answers at most %s/s with the soak's mix; the soak runs at %s/s for %s after a warm-up of %s", thousands(sr.maxThroughput), thousands(sr.rate), sr.duration, sr.warmup)

	// Admin writes in between: a user every half second.
	writesDone := make(chan struct{})
	wctx, stopWrites := context.WithCancel(ctx)
	go func() {
		defer close(writesDone)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			if _, _, err := w.admin.AddUser(wctx, model.User{FirstName: "Soak", LastName: strconv.Itoa(n)}); err != nil {
				if wctx.Err() == nil {
					sr.writesFailed++
				}
				continue
			}
			sr.writesOK++
		}
	}()
	// Resident memory and the token cache once the warm-up is over, and
	// at the end.
	var afterWarmup atomic.Int64
	warmedUp := make(chan struct{})
	go func() {
		defer close(warmedUp)
		select {
		case <-ctx.Done():
		case <-time.After(sr.warmup):
			afterWarmup.Store(rss(w.cmd.Process.Pid))
			sr.cacheAfterWarmup = cacheFigures(ctx, w.diag)
		}
	}()
	sr.res, err = load.Open{Rate: sr.rate, Concurrency: c.concurrency, Warmup: sr.warmup, Duration: sr.duration}.Run(ctx, t)
	<-warmedUp
	sr.rssAfterWarmup, sr.rssAtEnd = afterWarmup.Load(), rss(w.cmd.Process.Pid)
	sr.cacheAtEnd = cacheFigures(ctx, w.diag)
	stopWrites()
	<-writesDone
	sr.wrong = wrong.Load()
	report := soakReport(sr)
	fmt.Fprint(os.Stderr, report)
	if err := os.WriteFile(c.mdPath, []byte(report), 0o644); err != nil {
		return err
	}
	progress("wrote %s", c.mdPath)
	growth := float64(sr.rssAtEnd-sr.rssAfterWarmup) / float64(max(sr.rssAfterWarmup, 1))
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case sr.res.Errors > 0 || sr.writesFailed > 0:
		return fmt.Errorf("the soak had %d failed checks (%d wrong decisions) and %d failed writes: %v", sr.res.Errors, sr.wrong, sr.writesFailed, err)
	case growth >= 0.10:
		return fmt.Errorf("resident memory grew by %.1f%% after the warm-up; the target is less than 10%%", 100*growth)
	}
	return nil
}

// soakMaximum measures the most Warden answers with t: a closed loop
// first, then open loops from that rate down, by a tenth each time, to the
// first rate Warden keeps up with (it answers 98% of the rate, with a p99
// under 50 ms, so no queue builds).
func soakMaximum(ctx context.Context, c config, t load.Target) (open, closed float64, err error) {
	probe, err := load.Closed{Concurrency: c.concurrency, Warmup: c.warmup, Duration: c.duration}.Run(ctx, t)
	if err != nil {
		return 0, 0, fmt.Errorf("measuring the most Warden answers: %w", err)
	}
	if probe.Errors > 0 {
		return 0, 0, fmt.Errorf("measuring the most Warden answers: %d failed checks", probe.Errors)
	}
	closed = probe.Throughput()
	for rate, try := closed, 0; try < 8; rate, try = rate*0.9, try+1 {
		res, err := load.Open{Rate: rate, Concurrency: c.concurrency, Warmup: time.Second, Duration: 3 * time.Second}.Run(ctx, t)
		if err != nil {
			return 0, 0, fmt.Errorf("measuring the most Warden answers: %w", err)
		}
		if res.Errors > 0 {
			return 0, 0, fmt.Errorf("measuring the most Warden answers: %d failed checks", res.Errors)
		}
		p99 := res.Percentile(99)
		progress("open loop at %s/s: answered %s/s, p99 %s", thousands(rate), thousands(res.Throughput()), ms(p99))
		if res.Throughput() >= 0.98*rate && p99 < 50*time.Millisecond {
			return rate, closed, nil
		}
	}
	return 0, 0, fmt.Errorf("measuring the most Warden answers: no open loop from %s/s down kept up", thousands(closed))
}

// rss reads a process's resident set size, in bytes, from /proc; 0 when it
// cannot.
func rss(pid int) int64 {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func soakReport(sr soakResult) string {
	var b strings.Builder
	res := sr.res
	fmt.Fprintf(&b, "# Soak\n\n")
	fmt.Fprintf(&b, "Warden alone at 80%% of the most it answered (%s/s, the mix below, the highest open-loop rate it kept up with; a closed loop over %s got %s/s): %s/s for %s after a warm-up of %s.\n\n",
		thousands(sr.maxThroughput), sr.maxProbe, thousands(sr.closedMax), thousands(sr.rate), sr.duration, sr.warmup)
	fmt.Fprintf(&b, "The mix, of every 20 requests:")
	for _, k := range []string{mixAllow, mixDeny, mixFresh, mixInvalid, mixNone} {
		fmt.Fprintf(&b, " %d %s;", sr.perKind[k], k)
	}
	fmt.Fprintf(&b, " and an admin write (a new user) every half second.\n\n")
	fmt.Fprintf(&b, "Warden's token cache is bounded at %d tokens (--token-cache-size), so that the fresh tokens fill it during the warm-up; "+
		"every fresh token is new to Warden, and once the cache is full each one evicts another.\n\n", soakCacheSize)
	fmt.Fprintf(&b, "| figure | value | target |\n|---|---:|---|\n")
	fmt.Fprintf(&b, "| checks answered | %d (%s/s) | |\n", res.Requests, thousands(res.Throughput()))
	fmt.Fprintf(&b, "| errors (failed or unexpected answers) | %d | 0 |\n", res.Errors)
	fmt.Fprintf(&b, "| wrong decisions | %d | 0 |\n", sr.wrong)
	fmt.Fprintf(&b, "| admin writes | %d done, %d failed | 0 failed |\n", sr.writesOK, sr.writesFailed)
	fmt.Fprintf(&b, "| p50 / p99 / p99.9 | %s / %s / %s | |\n", ms(res.Percentile(50)), ms(res.Percentile(99)), ms(res.Percentile(99.9)))
	fmt.Fprintf(&b, "| token cache after the warm-up → at the end | %d → %d tokens, %d → %d evictions | |\n",
		sr.cacheAfterWarmup.entries, sr.cacheAtEnd.entries, sr.cacheAfterWarmup.evictions, sr.cacheAtEnd.evictions)
	growth := 100 * float64(sr.rssAtEnd-sr.rssAfterWarmup) / float64(max(sr.rssAfterWarmup, 1))
	fmt.Fprintf(&b, "| resident memory after the warm-up → at the end | %.1f → %.1f MiB (%+.1f%%) | growth under 10%% |\n",
		float64(sr.rssAfterWarmup)/(1<<20), float64(sr.rssAtEnd)/(1<<20), growth)
	return b.String()
}

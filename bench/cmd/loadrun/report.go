package main

import (
	"crypto/rsa"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func (s scenario) load() string {
	if s.rate > 0 {
		return fmt.Sprintf("open loop at %s/s", thousands(s.rate))
	}
	return "closed loop"
}

// report renders the results as markdown.
func report(c config, done []scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Load run, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s. OPA %s.\n\n", machine(), opaVersion())
	fmt.Fprintf(&b, "Load: %d keep-alive connections over loopback HTTP/1.1, the same generator for both servers; "+
		"a measured window of %s after a warm-up of %s (%s for fresh tokens, which are spent); "+
		"%d fresh RS256 tokens, each sent once to each server. Latency is from send to answer in a closed loop, "+
		"from the time a request was due in an open loop.\n\n",
		c.concurrency, c.duration, c.warmup, c.uncachedWarmup, c.uncachedTokens)
	b.WriteString("| scenario | load | window | answers | errors | throughput (/s) | p50 | p99 | p99.9 |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range done {
		r := s.res
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s | %s | %s |\n", s.name, s.load(), r.Elapsed.Round(10*time.Millisecond),
			r.Requests, r.Errors, thousands(r.Throughput()), ms(r.Percentile(50)), ms(r.Percentile(99)), ms(r.Percentile(99.9)))
	}
	b.WriteString("\n## Warden against OPA\n\n")
	b.WriteString("| measure | Warden | OPA | Warden / OPA |\n|---|---:|---:|---:|\n")
	ratio := func(label, wName, oName string) {
		w, o := find(done, wName), find(done, oName)
		if w == nil || o == nil {
			return
		}
		fmt.Fprintf(&b, "| %s | %s/s | %s/s | %.1f × |\n", label, thousands(w.res.Throughput()), thousands(o.res.Throughput()),
			w.res.Throughput()/o.res.Throughput())
	}
	ratio("throughput, cached token", "Warden, cached token", "OPA, cached token")
	ratio("throughput, fresh token per request", "Warden, fresh token per request", "OPA, fresh token per request")
	wo, oo := find(done, "Warden, cached token, half of its max"), find(done, "OPA, cached token, half of its max")
	if wo != nil && oo != nil {
		fmt.Fprintf(&b, "| p99 at half of its own max (%s/s, %s/s) | %s | %s | |\n", thousands(wo.rate), thousands(oo.rate),
			ms(wo.res.Percentile(99)), ms(oo.res.Percentile(99)))
	}
	for _, s := range done {
		if strings.HasPrefix(s.name, "Warden, cached token, half of its max, ") {
			fmt.Fprintf(&b, "| p99 at the same rate, %s | %s | | |\n", strings.TrimPrefix(s.name, "Warden, cached token, half of its max, "), ms(s.res.Percentile(99)))
		}
	}
	if fo := find(done, "floor, at Warden's half-max rate"); wo != nil && fo != nil {
		fmt.Fprintf(&b, "| p99 of the floor (a server that does nothing) at Warden's half-max rate | %s | | |\n", ms(fo.res.Percentile(99)))
	}
	if wo != nil {
		fmt.Fprintf(&b, "\nThe open loop sent its requests %s late on average (the generator's own lag, counted in the latencies).\n",
			wo.res.Lag.Round(time.Microsecond))
	}
	b.WriteString(freshBound(done))
	return b.String()
}

// verifyFloor is what verifying one fresh token costs by itself, measured
// in the run (measureVerify).
var verifyFloor time.Duration

// measureVerify times golang-jwt's parse and verify of up to 2 000 of the
// fresh tokens, with the key at hand, on one goroutine: the floor of a
// fresh-token check.
func measureVerify(key *rsa.PublicKey, tokens tokenList) time.Duration {
	n := min(tokens.Len(), 2000)
	if n == 0 {
		return 0
	}
	start := time.Now()
	for i := range n {
		_, _ = jwt.Parse(tokens.At(i), func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"RS256"}))
	}
	return time.Since(start) / time.Duration(n)
}

// freshBound says how the fresh-token throughput compares with what the
// machine allows: 0.8 × 1 / (the verify floor + the floor server's time a
// request), from the same run. With the servers pinned to one core
// (-server-cpus), that is the bound of a single core.
func freshBound(done []scenario) string {
	wf, fc := find(done, "Warden, fresh token per request"), find(done, "floor: a server that does nothing")
	if wf == nil || fc == nil || verifyFloor == 0 || fc.res.Throughput() == 0 {
		return ""
	}
	perRequest := time.Duration(float64(time.Second) / fc.res.Throughput())
	bound := 0.8 / (verifyFloor + perRequest).Seconds()
	met := "met"
	if wf.res.Throughput() < bound {
		met = "not met"
	}
	return fmt.Sprintf("\nFresh tokens: %s/s, against 0.8 × 1 / (verify floor %s + the floor server's %s a request) = %s/s: %s.\n",
		thousands(wf.res.Throughput()), verifyFloor.Round(100*time.Nanosecond), perRequest.Round(100*time.Nanosecond), thousands(bound), met)
}

func find(done []scenario, name string) *scenario {
	for i := range done {
		if done[i].name == name {
			return &done[i]
		}
	}
	return nil
}

// machine describes the machine: processor, cores, memory, Go.
func machine() string {
	// runtime.NumCPU counts the CPUs this process may run on, which
	// taskset narrows; /proc/cpuinfo lists the machine's.
	cpu, mem, cpus := "unknown processor", "", runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				if n == 0 {
					cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				}
				n++
			}
		}
		cpus = max(cpus, n)
	}
	pinned := ""
	if serverCPUs != "" {
		pinned = fmt.Sprintf("; the servers on CPUs %s, the generator allowed %d CPU(s)", serverCPUs, runtime.NumCPU())
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d vCPUs (%s)%s, %s/%s, %s%s", cpus, cpu, mem, runtime.GOOS, runtime.GOARCH, runtime.Version(), pinned)
}

func opaVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/open-policy-agent/opa" {
				return d.Version
			}
		}
	}
	return "(version unknown)"
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// thousands formats a rate as a whole number with spaces between
// thousands.
func thousands(v float64) string {
	s := fmt.Sprintf("%d", int64(math.Round(v)))
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}

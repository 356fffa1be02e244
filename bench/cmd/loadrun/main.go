// Command loadrun is the load run of `make bench`: it starts the real
// `warden serve` and Open Policy Agent's server on loopback, gives both the
// same model (Warden through its admin API; OPA the same data exported back
// from Warden, with policy.rego), and sends both the same checks with the
// same load generator, one scenario after the other:
//
//   - the most each answers (a closed loop) with cached tokens (a few
//     tokens, repeated) and with a fresh token on every request;
//   - Warden with a policy hook (the tenant example);
//   - each at half of its own maximum, at a constant rate (an open loop),
//     where the latency target applies; Warden also once its token cache
//     holds the fresh tokens, and at the rates of -sweep;
//   - a floor: a server that does nothing, as a process of its own, in a
//     closed loop and at Warden's rates, to tell what the machine and the
//     generator cost by themselves.
//
// It writes a markdown report and a PNG plot of the latency percentiles.
// Run it from bench/ (paths default relative to it): go run ./cmd/loadrun.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/bench/internal/load"
)

// config is the run's settings, from flags.
type config struct {
	root, binDir, mdPath, pngPath string
	concurrency                   int
	warmup, duration              time.Duration
	uncachedWarmup                time.Duration
	uncachedTokens                int
	generatorProcs                int
	workDir                       string
	only                          *regexp.Regexp
	sweep                         []float64
	soak                          time.Duration
	doors                         bool
}

func main() {
	if (len(os.Args) == 4 || len(os.Args) == 5) && os.Args[1] == bareProxyFlag {
		if err := serveBareProxy(os.Args[2], os.Args[3], len(os.Args) == 5 && os.Args[4] == "pool"); err != nil {
			fmt.Fprintln(os.Stderr, "loadrun bare proxy:", err)
			os.Exit(1)
		}
		return
	}
	if (len(os.Args) == 3 || len(os.Args) == 4) && os.Args[1] == floorFlag {
		if err := serveFloor(os.Args[2], len(os.Args) == 4 && os.Args[3] == "empty"); err != nil {
			fmt.Fprintln(os.Stderr, "loadrun floor:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.StringVar(&c.root, "root", "..", "`directory` of the main module (Warden's sources)")
	flag.StringVar(&c.binDir, "bin-dir", "bin", "`directory` for the binaries the run builds")
	flag.StringVar(&c.mdPath, "md", "load.md", "`file` for the markdown report")
	flag.StringVar(&c.pngPath, "png", "latency.png", "`file` for the plot of latency percentiles")
	flag.IntVar(&c.concurrency, "concurrency", 32, "keep-alive connections of the load generator, the same for every scenario")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each scenario's measured window (not recorded)")
	flag.DurationVar(&c.duration, "duration", 8*time.Second, "measured window of each scenario")
	flag.DurationVar(&c.uncachedWarmup, "uncached-warmup", time.Second, "warm-up of the fresh-token scenarios, which spend tokens")
	flag.IntVar(&c.uncachedTokens, "uncached-tokens", 50_000, "fresh tokens minted for the fresh-token scenarios; a scenario ends early when they run out")
	flag.IntVar(&c.generatorProcs, "generator-procs", 1, "GOMAXPROCS of the load generator (the servers keep theirs: every core)")
	flag.StringVar(&serverCPUs, "server-cpus", "", "run the servers on these `CPUs` only (a taskset list, e.g. 0); start loadrun itself under taskset on the others to keep the generator off the servers' cores")
	only := flag.String("run", "", "run only the scenarios whose names match this `regexp` (and the ones an open loop needs)")
	flag.StringVar(&c.workDir, "work-dir", "", "`directory` for the servers' data, configuration and logs, kept after the run (default: a temporary one, removed)")
	flag.DurationVar(&c.soak, "soak", 0, "run the soak instead, for this `duration`: Warden alone at 80% of its maximum with a mix of valid, fresh, invalid and missing tokens and admin writes; report errors, wrong decisions and memory growth")
	flag.BoolVar(&c.doors, "doors", false, "run the front doors' comparison instead: forward auth against the check API, the reverse proxy against a bare one, nginx's auth_request to Warden against one to a server that does nothing (needs nginx)")
	sweep := flag.String("sweep", "", "comma-separated `rates` (per second) at which to run Warden's cached-token check and the floor in open loops too, to see how latency grows with load")
	flag.Parse()
	var err error
	for _, f := range strings.FieldsFunc(*sweep, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "loadrun: -sweep: %q is not a positive rate\n", f)
			os.Exit(2)
		}
		c.sweep = append(c.sweep, v)
	}
	if c.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun: -run:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	// The generator shares the machine with the server under test: one
	// thread of Go code keeps its threads from crowding the server's and
	// is enough to send tens of thousands of requests a second.
	runtime.GOMAXPROCS(c.generatorProcs)
	if serverCPUs != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("-server-cpus needs taskset (util-linux): %w", err)
		}
	}
	binDir, err := filepath.Abs(c.binDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	work := c.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "warden-loadrun-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}

	wardenBin, opaBin, hookWasm := filepath.Join(binDir, "warden"), filepath.Join(binDir, "opa"), filepath.Join(binDir, "tenant.wasm")
	if c.soak > 0 {
		progress("building warden (main module)")
		if err := build(ctx, c.root, wardenBin, "./cmd/warden", nil); err != nil {
			return err
		}
		return runSoak(ctx, c, wardenBin, work)
	}
	if c.doors {
		progress("building warden (main module)")
		if err := build(ctx, c.root, wardenBin, "./cmd/warden", nil); err != nil {
			return err
		}
		return runDoors(ctx, c, wardenBin, work)
	}
	progress("building warden (main module), opa (pinned in bench/go.mod) and the tenant hook")
	if err := build(ctx, c.root, wardenBin, "./cmd/warden", nil); err != nil {
		return err
	}
	if err := build(ctx, ".", opaBin, "github.com/open-policy-agent/opa", nil); err != nil {
		return err
	}
	if err := build(ctx, c.root, hookWasm, "./policywasm/examples/tenant", []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}, "-buildmode=c-shared"); err != nil {
		return err
	}
	module, err := os.ReadFile(hookWasm)
	if err != nil {
		return err
	}

	w, userKey, err := startPopulated(ctx, wardenBin, work)
	if err != nil {
		return err
	}
	defer w.stop()
	m, err := w.export(ctx)
	if err != nil {
		return fmt.Errorf("exporting Warden's model: %w", err)
	}
	progress("Warden holds %d issuers and %d agents", len(m.Issuers), len(m.Agents))

	aud := w.baseURL
	cached, err := mintTokens(userKey, aud, users, nil)
	if err != nil {
		return err
	}
	hooked, err := mintTokens(userKey, aud, users, jwt.MapClaims{"tenant": benchAccount})
	if err != nil {
		return err
	}
	freshList, err := mintFresh(userKey, aud, c.uncachedTokens)
	if err != nil {
		return err
	}
	// Packed, the tokens are one object to the generator's collector.
	fresh := packTokens(freshList)
	freshList = nil
	verifyFloor = measureVerify(&userKey.PublicKey, fresh)
	progress("verifying a fresh token alone (golang-jwt, the key at hand, one goroutine): %s", verifyFloor)

	r := &runner{cfg: c, ctx: ctx}
	closed := load.Closed{Concurrency: c.concurrency, Warmup: c.warmup, Duration: c.duration}
	closedFresh := load.Closed{Concurrency: c.concurrency, Warmup: c.uncachedWarmup, Duration: c.duration}

	// The open loops at fixed rates run while Warden's token cache holds
	// only the cached tokens; then the fresh tokens fill it (one entry
	// each), and the half-max loop runs again: a cache of many entries
	// makes the garbage collector's work, and so the tail, larger.
	wc := r.closed("Warden, cached token", "Warden", closed, wardenTarget(w.addr, strs(cached), false))
	r.open("Warden, cached token, half of its max", "Warden", wc, wc, wardenTarget(w.addr, strs(cached), false))
	for _, rate := range c.sweep {
		r.sweepAt(fmt.Sprintf("Warden, cached token, at %s/s", thousands(rate)), "Warden", rate, wardenTarget(w.addr, strs(cached), false))
	}
	wf := r.closed("Warden, fresh token per request", "Warden", closedFresh, wardenTarget(w.addr, fresh, true))
	r.open(fmt.Sprintf("Warden, cached token, half of its max, %d more tokens cached", c.uncachedTokens), "Warden", wf, wc, wardenTarget(w.addr, strs(cached), false))
	if hookName := "Warden, cached token, tenant hook"; r.err == nil && c.only.MatchString(hookName) {
		if err := w.putHook(ctx, module); err != nil {
			return fmt.Errorf("registering the hook: %w", err)
		}
		r.closed(hookName, "Warden", closed, wardenTarget(w.addr, strs(hooked), false))
		if err := w.deleteHook(ctx); err != nil {
			return fmt.Errorf("removing the hook: %w", err)
		}
	}
	w.stop()

	// The floor, at the rate of Warden's open loop: the latency the
	// machine and the generator give a server that does nothing.
	if r.err == nil && c.only.MatchString("floor") {
		f, addr, err := startFloor(ctx, work)
		if err != nil {
			return err
		}
		one := &packedRequests{}
		one.add(load.PostJSON(addr, "/v1/check", cached[0], []byte(`{}`)))
		ft := target(addr, one, false, []byte(`"allow":true`))
		fc := r.closed("floor: a server that does nothing", "floor", closed, ft)
		r.open("floor, at Warden's half-max rate", "floor", fc, wc, ft)
		for _, rate := range c.sweep {
			r.sweepAt(fmt.Sprintf("floor, at %s/s", thousands(rate)), "floor", rate, ft)
		}
		f.stop()
	}

	if r.err == nil && c.only.MatchString("OPA") {
		o, err := startOPA(ctx, opaBin, work, m)
		if err != nil {
			return err
		}
		defer o.stop()
		// In the same order as Warden's: the open loop before the fresh
		// tokens fill the io_jwt cache.
		oc := r.closed("OPA, cached token", "OPA", closed, opaTarget(o.addr, strs(cached), false))
		r.open("OPA, cached token, half of its max", "OPA", oc, oc, opaTarget(o.addr, strs(cached), false))
		r.closed("OPA, fresh token per request", "OPA", closedFresh, opaTarget(o.addr, fresh, true))
		o.stop()
	}
	if r.err != nil {
		return r.err
	}
	if len(r.done) == 0 {
		return fmt.Errorf("no scenario matched -run %q; the servers' gates match their names: Warden, floor, OPA", c.only)
	}

	if err := os.WriteFile(c.mdPath, []byte(report(c, r.done)), 0o644); err != nil {
		return err
	}
	if err := plotLatencies(c.pngPath, r.done); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	progress("wrote %s and %s", c.mdPath, c.pngPath)
	if r.failed {
		return errors.New("some requests failed or were answered unexpectedly; see the errors column")
	}
	return nil
}

// scenario is one measured run.
type scenario struct {
	name, server string
	// rate is the open loop's rate; 0 for a closed loop.
	rate float64
	// sweep marks the runs of -sweep, left out of the plot.
	sweep bool
	res   load.Result
}

// runner runs scenarios in order, keeping the results and the first error
// that stops the run (failed requests do not: they are reported).
type runner struct {
	cfg    config
	ctx    context.Context
	done   []scenario
	err    error
	failed bool
}

func (r *runner) closed(name, server string, l load.Closed, t load.Target) *scenario {
	if !r.cfg.only.MatchString(name) && !r.cfg.only.MatchString(name+", half of its max") {
		return nil
	}
	return r.measure(scenario{name: name, server: server}, func() (load.Result, error) { return l.Run(r.ctx, t) })
}

// open runs at half of base's throughput; after must have run (it is the
// closed loop of the same server).
func (r *runner) open(name, server string, after, base *scenario, t load.Target) *scenario {
	if after == nil || base == nil || base.res.Throughput() == 0 || !r.cfg.only.MatchString(name) {
		return nil
	}
	return r.openAt(name, server, base.res.Throughput()/2, t)
}

// openAt runs an open loop at rate.
func (r *runner) openAt(name, server string, rate float64, t load.Target) *scenario {
	return r.openLoop(scenario{name: name, server: server, rate: rate}, t)
}

// sweepAt runs an open loop of -sweep at rate.
func (r *runner) sweepAt(name, server string, rate float64, t load.Target) *scenario {
	return r.openLoop(scenario{name: name, server: server, rate: rate, sweep: true}, t)
}

func (r *runner) openLoop(s scenario, t load.Target) *scenario {
	if !r.cfg.only.MatchString(s.name) {
		return nil
	}
	l := load.Open{Rate: s.rate, Concurrency: r.cfg.concurrency, Warmup: r.cfg.warmup, Duration: r.cfg.duration}
	return r.measure(s, func() (load.Result, error) { return l.Run(r.ctx, t) })
}

func (r *runner) measure(s scenario, run func() (load.Result, error)) *scenario {
	if r.err != nil {
		return nil
	}
	progress("%s: running (%s)", s.name, s.load())
	var err error
	s.res, err = run()
	if r.ctx.Err() != nil {
		r.err = r.ctx.Err()
		return nil
	}
	if err != nil {
		if s.res.Requests == 0 {
			r.err = fmt.Errorf("%s: %w", s.name, err)
			return nil
		}
		r.failed = true
		progress("%s: %v", s.name, err)
	}
	res := s.res
	lag := ""
	if s.rate > 0 {
		lag = fmt.Sprintf(", sent %s late on average", res.Lag.Round(time.Microsecond))
	}
	progress("%s: %s/s over %s, p50 %s, p99 %s, p99.9 %s, %d errors%s", s.name, thousands(res.Throughput()), res.Elapsed.Round(time.Millisecond),
		ms(res.Percentile(50)), ms(res.Percentile(99)), ms(res.Percentile(99.9)), res.Errors, lag)
	r.done = append(r.done, s)
	return &s
}

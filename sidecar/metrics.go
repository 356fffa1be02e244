package sidecar

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/wardenauthz/warden/sidecar/internal/obs"
)

// ReasonClass groups the reasons of decisions into a few kinds, for metrics
// and the decision log: reasons themselves name actions, resources and
// issuers, so they cannot be label values.
type ReasonClass uint8

// Reason classes.
const (
	// ClassGranted: a grant allowed the request (and no hook objected).
	ClassGranted ReasonClass = iota
	// ClassHookAllowed: a hook in decide mode allowed the request.
	ClassHookAllowed
	// ClassMissingToken: 401, no bearer token.
	ClassMissingToken
	// ClassExpiredToken: 401, the token's exp passed or its nbf is ahead.
	ClassExpiredToken
	// ClassInvalidToken: 401, any other reason the token is not accepted.
	ClassInvalidToken
	// ClassUnknownIdentity: 403, no agent has the token's identity.
	ClassUnknownIdentity
	// ClassInlinePermissions: 403, the token's inline permissions failed.
	ClassInlinePermissions
	// ClassNoGrant: 403, no grant covers the request.
	ClassNoGrant
	// ClassHookDenied: 403, a hook denied the request.
	ClassHookDenied
	// ClassHookFailed: 403, a hook failed (or could not be loaded) and
	// the check failed closed.
	ClassHookFailed
	// ClassOpenRoute: a route table let the request through without a
	// grant: a route that requires no authentication, an optional one
	// without a valid token, or the table's default.
	ClassOpenRoute
	// ClassNoRoute: 403, no route of the table matched and its default
	// denies.
	ClassNoRoute
	numClasses
)

// Decisions are counted by class and mode: the counters must hold both.
var _ [obs.MaxClasses - 2*numClasses]struct{}

var classNames = [numClasses]string{
	"granted", "hook_allowed", "missing_token", "expired_token", "invalid_token",
	"unknown_identity", "inline_permissions", "no_grant", "hook_denied", "hook_failed",
	"open_route", "no_route",
}

// String returns the class's name, as in metrics and the decision log.
func (c ReasonClass) String() string {
	if c >= numClasses {
		return "unknown"
	}
	return classNames[c]
}

// Allows reports whether decisions of the class allow.
func (c ReasonClass) Allows() bool {
	return c == ClassGranted || c == ClassHookAllowed || c == ClassOpenRoute
}

// DefaultTimingSample is how many checks share one timing by default.
const DefaultTimingSample = 16

// metrics are the engine's recorders. The engine has none when Deps
// carries no Registerer.
type metrics struct {
	// sample: one check in sample is timed. Reading the clock a second
	// time costs about 30 ns on a virtual machine, 5% of a cached check;
	// counts are kept for every check.
	sample uint32
	// below: a check is timed when a random uint32 falls below it (a
	// division per check would cost more than the draw).
	below     uint32
	checks    obs.Histogram
	decisions obs.Counters

	mu    sync.Mutex
	hooks map[hookKey]*obs.Histogram
}

type hookKey struct{ account, name string }

// timed reports whether this check is one of those timed.
func (m *metrics) timed() bool {
	return m.sample == 1 || rand.Uint32() < m.below
}

func newMetrics(sample int) *metrics {
	return &metrics{sample: uint32(sample), below: uint32(math.MaxUint32 / uint64(sample)), hooks: map[hookKey]*obs.Histogram{}}
}

// hookTiming returns the histogram of a hook, creating it.
func (m *metrics) hookTiming(account, name string) *obs.Histogram {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := hookKey{account, name}
	h := m.hooks[k]
	if h == nil {
		h = &obs.Histogram{}
		m.hooks[k] = h
	}
	return h
}

// forgetHooks drops the histograms of hooks no longer attached.
func (m *metrics) forgetHooks(keep []AttachedHook) {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := make(map[hookKey]bool, len(keep))
	for i := range keep {
		live[hookKey{keep[i].Account, keep[i].name()}] = true
	}
	for k := range m.hooks {
		if !live[k] {
			delete(m.hooks, k)
		}
	}
}

var (
	checkDurationDesc = prometheus.NewDesc("warden_check_duration_seconds",
		"Time to decide a check, in process (not counting HTTP), on a sample of checks: one in --check-timing-sample.", nil, nil)
	decisionsDesc = prometheus.NewDesc("warden_decisions_total",
		"Checks decided, by result (allow or deny), reason class and mode: enforce, or dry-run for a route table's dry-run routes (counted as decided, though let through).", []string{"result", "reason", "mode"}, nil)
	cacheHitsDesc = prometheus.NewDesc("warden_token_cache_hits_total",
		"Checks whose token was found verified in the token cache.", nil, nil)
	cacheMissesDesc = prometheus.NewDesc("warden_token_cache_misses_total",
		"Checks whose token was not in the token cache (or had expired there).", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("warden_token_cache_evictions_total",
		"Verified tokens dropped from the full token cache to make room.", nil, nil)
	cacheEntriesDesc = prometheus.NewDesc("warden_token_cache_entries",
		"Verified tokens in the token cache, expired ones included.", nil, nil)
	keyFetchesDesc = prometheus.NewDesc("warden_key_fetches_total",
		"Fetches of issuers' key URLs, by trigger (initial, scheduled, unknown_kid) and result (success, failure).", []string{"trigger", "result"}, nil)
	keyFailuresDesc = prometheus.NewDesc("warden_key_fetch_failures_total",
		"Failed fetches of issuers' key URLs, by kind: dns, refused, timeout, tls, redirect, connection, http_status, read, too_large, bad_document, insecure_url, bad_url.", []string{"kind"}, nil)
	keyAgeDesc = prometheus.NewDesc("warden_key_age_seconds",
		"Time since an issuer's keys were last fetched successfully, for issuers publishing keys at a URL.", []string{"account", "issuer"}, nil)
	keyFailingDesc = prometheus.NewDesc("warden_key_refresh_failing",
		"1 while an issuer's last key fetch failed (its previous keys, if any, are kept until --max-key-staleness), else 0; an issuer whose keys never loaded is 1.", []string{"account", "issuer"}, nil)
	hookDurationDesc = prometheus.NewDesc("warden_hook_duration_seconds",
		"Time of one call of a policy hook.", []string{"account", "hook"}, nil)
)

// collector exports the engine's metrics.
type collector struct{ e *Engine }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{checkDurationDesc, decisionsDesc, cacheHitsDesc, cacheMissesDesc, cacheEvictionsDesc,
		cacheEntriesDesc, keyFetchesDesc, keyFailuresDesc, keyAgeDesc, keyFailingDesc, hookDurationDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	e, m := c.e, c.e.metrics
	ch <- histogramMetric{checkDurationDesc, nil, m.checks.Snapshot()}
	// The route table's own classes are counted by the front doors
	// (warden_route_decisions_total), never by the engine.
	for cl := range ClassOpenRoute {
		result := "deny"
		if cl.Allows() {
			result = "allow"
		}
		ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(m.decisions.Value(int(cl))), result, cl.String(), "enforce")
		if n := m.decisions.Value(int(cl + numClasses)); n > 0 {
			ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(n), result, cl.String(), "dry-run")
		}
	}
	cs := e.cache.Stats()
	ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(cs.Hits))
	ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(cs.Misses))
	ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(cs.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(e.cache.Len()))
	for k, n := range e.keys.Fetches() {
		ch <- prometheus.MustNewConstMetric(keyFetchesDesc, prometheus.CounterValue, float64(n), k.Trigger, k.Result)
	}
	for kind, n := range e.keys.Failures() {
		ch <- prometheus.MustNewConstMetric(keyFailuresDesc, prometheus.CounterValue, float64(n), kind)
	}
	now := e.now()
	for _, s := range e.keys.Sets() {
		if !s.Fetched {
			continue
		}
		failing := 0.0
		if s.Failing {
			failing = 1
		}
		// An issuer whose keys never loaded has no age, but it is
		// failing, and an alert on the failing series must see it.
		ch <- prometheus.MustNewConstMetric(keyFailingDesc, prometheus.GaugeValue, failing, s.Account, s.Issuer)
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, now.Sub(s.LastSuccess).Seconds(), s.Account, s.Issuer)
		}
	}
	m.mu.Lock()
	hooks := make(map[hookKey]*obs.Snapshot, len(m.hooks))
	for k, h := range m.hooks {
		hooks[k] = h.Snapshot()
	}
	m.mu.Unlock()
	for k, s := range hooks {
		ch <- histogramMetric{hookDurationDesc, []string{k.account, k.name}, s}
	}
}

// histogramMetric is a histogram snapshot as a prometheus.Metric.
type histogramMetric struct {
	desc   *prometheus.Desc
	labels []string
	snap   *obs.Snapshot
}

func (h histogramMetric) Desc() *prometheus.Desc { return h.desc }

func (h histogramMetric) Write(m *dto.Metric) error {
	m.Label = prometheus.MakeLabelPairs(h.desc, h.labels)
	h.snap.Write(m)
	return nil
}

// observeCheck records a decision, and its duration when the check was
// timed (start is then when it began).
func (m *metrics) observeCheck(core int, class ReasonClass, dryRun, timed bool, start time.Time) {
	i := int(class)
	if dryRun {
		i += int(numClasses)
	}
	m.decisions.AddOn(core, i)
	if timed {
		m.checks.Observe(time.Since(start))
	}
}

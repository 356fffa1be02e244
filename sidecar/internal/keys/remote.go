package keys

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/sidecar/internal/tick"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors of key lookup at a URL.
var (
	ErrUnknownKid  = errors.New("unknown key id")
	ErrRateLimited = errors.New("unknown key id; refetch rate-limited")
	ErrKeysStale   = errors.New("issuer keys are stale")
	ErrFetch       = errors.New("fetching issuer keys")
	ErrInsecureURL = errors.New("key URL is not https")
)

// FetchError is a failed fetch of an issuer's keys. Kind names the kind of
// failure, one of FailureKinds, for metrics; the error itself has the
// details (addresses, resolvers, messages of the network stack), which
// belong in the log. Neither is told to whoever sent the token: which
// hosts Warden can reach is not theirs to learn.
type FetchError struct {
	Kind string
	Err  error
}

// Kinds of failed fetch, the values of FetchError.Kind.
const (
	FailDNS         = "dns"
	FailRefused     = "refused"
	FailTimeout     = "timeout"
	FailTLS         = "tls"
	FailRedirect    = "redirect"
	FailConnection  = "connection"
	FailStatus      = "http_status"
	FailRead        = "read"
	FailTooLarge    = "too_large"
	FailDocument    = "bad_document"
	FailInsecureURL = "insecure_url"
	FailBadURL      = "bad_url"
)

// FailureKinds are the kinds of failed fetch, in a fixed order.
var FailureKinds = [...]string{FailDNS, FailRefused, FailTimeout, FailTLS, FailRedirect, FailConnection,
	FailStatus, FailRead, FailTooLarge, FailDocument, FailInsecureURL, FailBadURL}

func (e *FetchError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// fetchErr is a FetchError of kind whose detail wraps ErrFetch (or
// ErrInsecureURL) with what follows.
func fetchErr(kind string, format string, args ...any) *FetchError {
	return &FetchError{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// StaleError says an issuer's keys are too old to use: every refresh
// failed for longer than MaxStaleness.
type StaleError struct {
	Since time.Duration // since the last successful fetch
	Last  error         // the last failure
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%s: last fetched %s ago: %v", ErrKeysStale, e.Since.Round(time.Second), e.Last)
}

// Unwrap makes errors.Is(err, ErrKeysStale) hold.
func (e *StaleError) Unwrap() error { return ErrKeysStale }

// PublicReason says why a key lookup failed in words fit for whoever sent
// the token: that the keys could not be fetched, never why (a reachability
// oracle, readable without a token), save for a key URL that is not https,
// which is the issuer's configuration. It is "" for errors that are not
// about fetching keys.
func PublicReason(err error) string {
	var fe *FetchError
	switch {
	case errors.Is(err, ErrKeysStale):
		return "are stale: refreshing them has failed for too long"
	case errors.As(err, &fe) && fe.Kind == FailInsecureURL:
		return "could not be fetched: the key URL is not https"
	case errors.Is(err, ErrFetch), errors.Is(err, ErrInsecureURL):
		return "could not be fetched"
	}
	return ""
}

// classify names the kind of a failed request.
func classify(err error) string {
	var dns *net.DNSError
	var netErr net.Error
	var unknownAuth x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var tlsRecord tls.RecordHeaderError
	switch {
	case errors.Is(err, errRedirect):
		return FailRedirect
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return FailTimeout
	case errors.As(err, &dns):
		return FailDNS
	case errors.As(err, &unknownAuth), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &tlsRecord):
		return FailTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	}
	return FailConnection
}

// RegistryConfig configures a Registry. The zero value of each field is its
// default.
type RegistryConfig struct {
	// HTTPClient fetches key documents. Default: a client with no global
	// state and FetchTimeout.
	HTTPClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives fetch failures. Default: slog.Default().
	Logger *slog.Logger
	// MaxStaleness is how long keys outlive failed refreshes. Default 24h.
	MaxStaleness time.Duration
	// UnknownKidInterval is the least time between two refetches caused by
	// unknown kids, per issuer. Default 30s.
	UnknownKidInterval time.Duration
	// FetchTimeout bounds one fetch. Default 5s.
	FetchTimeout time.Duration
	// DefaultMaxAge applies when a response has no Cache-Control max-age.
	// Default 1h. Every max-age is clamped to [1m, 24h].
	DefaultMaxAge time.Duration
	// RetryInterval is the wait before retrying a failed scheduled refresh.
	// Default 30s.
	RetryInterval time.Duration
	// IdleTimeout drops a key set nobody used for this long. Default 1h.
	IdleTimeout time.Duration
	// AllowInsecure accepts http:// URLs (loopback tests only).
	AllowInsecure bool
}

const (
	minMaxAge       = time.Minute
	maxMaxAge       = 24 * time.Hour
	maxDocumentSize = 1 << 20
)

func (c *RegistryConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxStaleness, 24*time.Hour)
	def(&c.UnknownKidInterval, 30*time.Second)
	def(&c.FetchTimeout, 5*time.Second)
	def(&c.DefaultMaxAge, time.Hour)
	def(&c.RetryInterval, 30*time.Second)
	def(&c.IdleTimeout, time.Hour)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.FetchTimeout}
	}
	// A copy, so that the caller's client keeps its own redirect policy.
	client := *c.HTTPClient
	client.CheckRedirect = redirectPolicy(c.AllowInsecure)
	c.HTTPClient = &client
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Registry keeps the key sets of issuers that publish keys at a URL.
type Registry struct {
	cfg  RegistryConfig
	mu   sync.Mutex
	sets map[remoteKey]*Remote
	// fetches counts fetches by trigger and result, retired sets' too.
	fetches [len(triggers)][2]atomic.Uint64
	// failures counts failed fetches by kind, in FailureKinds' order.
	failures [len(FailureKinds)]atomic.Uint64
}

func (r *Registry) countFailure(kind string) {
	if i := slices.Index(FailureKinds[:], kind); i >= 0 {
		r.failures[i].Add(1)
	}
}

// Failures returns the counts of failed fetches by kind, zeros included.
func (r *Registry) Failures() map[string]uint64 {
	out := make(map[string]uint64, len(FailureKinds))
	for i, k := range FailureKinds {
		out[k] = r.failures[i].Load()
	}
	return out
}

// Fetch triggers, as labels.
var triggers = [...]string{"initial", "scheduled", "unknown_kid"}

const (
	triggerInitial = iota
	triggerScheduled
	triggerUnknownKid
)

// FetchKey names a count of fetches.
type FetchKey struct{ Trigger, Result string }

// Fetches returns the registry's fetch counts by trigger and result
// (success or failure), zeros included.
func (r *Registry) Fetches() map[FetchKey]uint64 {
	out := make(map[FetchKey]uint64, 2*len(triggers))
	for t, name := range triggers {
		out[FetchKey{name, "success"}] = r.fetches[t][0].Load()
		out[FetchKey{name, "failure"}] = r.fetches[t][1].Load()
	}
	return out
}

// SetStatus is the state of one issuer's fetched keys.
type SetStatus struct {
	Account, Issuer string
	// LastSuccess is when the keys were last fetched; zero before.
	LastSuccess time.Time
	// Failing says the last fetch failed.
	Failing bool
	// Fetched says a fetch has ended, well or not.
	Fetched bool
}

// Sets returns the state of every key set the registry holds.
func (r *Registry) Sets() []SetStatus {
	r.mu.Lock()
	sets := make([]*Remote, 0, len(r.sets))
	for _, rm := range r.sets {
		sets = append(sets, rm)
	}
	r.mu.Unlock()
	out := make([]SetStatus, 0, len(sets))
	for _, rm := range sets {
		rm.mu.Lock()
		out = append(out, SetStatus{Account: rm.key.account, Issuer: rm.key.issuer, LastSuccess: rm.stats.LastSuccess, Failing: rm.lastErr != nil,
			Fetched: rm.stats.OK+rm.stats.Failed > 0})
		rm.mu.Unlock()
	}
	return out
}

type remoteKey struct{ account, issuer, url string }

// NewRegistry returns a registry. Call Run to refresh keys in the background.
func NewRegistry(cfg RegistryConfig) *Registry {
	cfg.setDefaults()
	return &Registry{cfg: cfg, sets: map[remoteKey]*Remote{}}
}

// Remote returns the key set of an issuer of an account at a URL, creating
// it unfetched. Adding an issuer does not fetch; the first key lookup does.
func (r *Registry) Remote(account, issuer, keyURL string) *Remote {
	k := remoteKey{account, issuer, keyURL}
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := r.sets[k]
	if rm == nil {
		rm = &Remote{reg: r, key: k}
		rm.lastUsed.Store(r.cfg.Now().UnixNano())
		r.sets[k] = rm
	}
	return rm
}

// Run refreshes due key sets and drops idle ones every tick until ctx ends.
func (r *Registry) Run(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func() { r.RefreshDue(ctx) })
}

// RefreshDue starts a refresh of every loaded set whose refresh time has
// come, and drops sets idle for longer than IdleTimeout. It does not wait
// for the refreshes.
func (r *Registry) RefreshDue(ctx context.Context) {
	now := r.cfg.Now()
	r.mu.Lock()
	var due []*Remote
	for k, rm := range r.sets {
		if now.Sub(time.Unix(0, rm.lastUsed.Load())) > r.cfg.IdleTimeout {
			delete(r.sets, k)
			rm.retire()
			continue
		}
		if rm.due(now) {
			due = append(due, rm)
		}
	}
	r.mu.Unlock()
	for _, rm := range due {
		rm.startFetch(ctx, triggerScheduled)
	}
}

// Remote is the key set of one issuer published at a URL.
type Remote struct {
	reg *Registry
	key remoteKey
	// gen changes whenever the keys change or the set is retired; tokens
	// verified under an older generation must be verified again.
	gen atomic.Uint64
	// usableUntil is when the keys become too stale to use (unix ns);
	// zero before the first successful fetch and after retirement.
	usableUntil atomic.Int64
	lastUsed    atomic.Int64

	mu             sync.Mutex
	set            Set
	loaded         bool
	nextRefresh    time.Time
	lastUnknownKid time.Time
	lastErr        error
	fetching       chan struct{} // closed when the running fetch ends
	retired        bool
	stats          FetchStats
}

// FetchStats counts a set's fetches.
type FetchStats struct {
	OK, Failed    uint64
	LastSuccess   time.Time
	UnknownKidRun uint64 // refetches caused by unknown kids
}

// Gen returns the set's generation.
func (rm *Remote) Gen() uint64 { return rm.gen.Load() }

// Usable reports whether keys from this set of generation gen may still
// vouch for a token at now.
func (rm *Remote) Usable(gen uint64, now time.Time) bool {
	return rm.gen.Load() == gen && now.UnixNano() < rm.usableUntil.Load()
}

// Stats returns the set's fetch counters.
func (rm *Remote) Stats() FetchStats {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.stats
}

// Key returns the key with id kid, fetching the set on first use and
// refetching it once per UnknownKidInterval when kid is unknown. It also
// returns the generation the key belongs to.
func (rm *Remote) Key(ctx context.Context, kid string) (crypto.PublicKey, uint64, error) {
	cfg := &rm.reg.cfg
	now := cfg.Now()
	rm.lastUsed.Store(now.UnixNano())
	rm.mu.Lock()
	if !rm.loaded && rm.lastErr != nil && now.Before(rm.nextRefresh) && rm.fetching == nil {
		// The first fetch failed recently: do not hammer a down issuer
		// once per token; the background refresh retries.
		err := rm.lastErr
		rm.mu.Unlock()
		return nil, 0, err
	}
	if !rm.loaded {
		done := rm.startFetchLocked(ctx, triggerInitial)
		rm.mu.Unlock()
		if err := wait(ctx, done); err != nil {
			return nil, 0, err
		}
		rm.mu.Lock()
	}
	key, gen, err := rm.lookupLocked(kid, now)
	if !errors.Is(err, ErrUnknownKid) {
		rm.mu.Unlock()
		return key, gen, err
	}
	if rm.fetching == nil && now.Sub(rm.lastUnknownKid) < cfg.UnknownKidInterval {
		rm.mu.Unlock()
		return nil, 0, ErrRateLimited
	}
	if rm.fetching == nil {
		rm.lastUnknownKid = now
		rm.stats.UnknownKidRun++
	}
	done := rm.startFetchLocked(ctx, triggerUnknownKid)
	rm.mu.Unlock()
	if err := wait(ctx, done); err != nil {
		return nil, 0, err
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.lookupLocked(kid, cfg.Now())
}

func wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrFetch, ctx.Err())
	}
}

func (rm *Remote) lookupLocked(kid string, now time.Time) (crypto.PublicKey, uint64, error) {
	if !rm.loaded {
		if rm.lastErr != nil {
			return nil, 0, rm.lastErr
		}
		return nil, 0, ErrFetch
	}
	if now.UnixNano() >= rm.usableUntil.Load() {
		return nil, 0, &StaleError{Since: now.Sub(rm.stats.LastSuccess), Last: rm.lastErr}
	}
	key, ok := rm.set[kid]
	if !ok {
		return nil, 0, ErrUnknownKid
	}
	return key, rm.gen.Load(), nil
}

func (rm *Remote) due(now time.Time) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return (rm.loaded || rm.lastErr != nil) && rm.fetching == nil && !now.Before(rm.nextRefresh)
}

func (rm *Remote) startFetch(ctx context.Context, why int) {
	rm.mu.Lock()
	rm.startFetchLocked(ctx, why)
	rm.mu.Unlock()
}

// startFetchLocked starts a fetch unless one is running, and returns a
// channel closed when the running fetch ends. The fetch runs on its own
// deadline, so a caller giving up does not fail the others waiting.
func (rm *Remote) startFetchLocked(ctx context.Context, why int) <-chan struct{} {
	if rm.fetching != nil {
		return rm.fetching
	}
	done := make(chan struct{})
	rm.fetching = done
	go func() {
		defer close(done)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rm.reg.cfg.FetchTimeout)
		defer cancel()
		set, maxAge, err := rm.fetch(fctx)
		rm.finish(set, maxAge, err, why)
	}()
	return done
}

func (rm *Remote) finish(set Set, maxAge time.Duration, err error, why int) {
	cfg := &rm.reg.cfg
	now := cfg.Now()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.fetching = nil
	failed := 0
	if err != nil {
		failed = 1
	}
	rm.reg.fetches[why][failed].Add(1)
	var fe *FetchError
	if errors.As(err, &fe) {
		rm.reg.countFailure(fe.Kind)
	}
	if rm.retired {
		return
	}
	log := cfg.Logger.With("account", rm.key.account, "issuer", rm.key.issuer, "url", RedactURL(rm.key.url), "fetch", triggers[why])
	if err != nil {
		rm.stats.Failed++
		rm.lastErr = err
		rm.nextRefresh = now.Add(cfg.RetryInterval)
		if rm.loaded {
			log.Warn("refreshing issuer keys failed; keeping the last keys", "err", err,
				"usable_until", time.Unix(0, rm.usableUntil.Load()).UTC())
		} else {
			log.Warn("fetching issuer keys failed", "err", err)
		}
		return
	}
	rm.stats.OK++
	rm.stats.LastSuccess = now
	rm.lastErr = nil
	if !rm.loaded || !sameSet(rm.set, set) {
		rm.gen.Add(1)
	}
	rm.set, rm.loaded = set, true
	rm.usableUntil.Store(now.Add(cfg.MaxStaleness).UnixNano())
	rm.nextRefresh = now.Add(maxAge)
}

// retire stops a set from vouching for anything.
func (rm *Remote) retire() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.retired = true
	rm.gen.Add(1)
	rm.usableUntil.Store(0)
}

func sameSet(a, b Set) bool {
	if len(a) != len(b) {
		return false
	}
	for kid, ka := range a {
		kb, ok := b[kid]
		if !ok {
			return false
		}
		eq, ok := ka.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(kb) {
			return false
		}
	}
	return true
}

func (rm *Remote) fetch(ctx context.Context) (Set, time.Duration, error) {
	cfg := &rm.reg.cfg
	at := RedactURL(rm.key.url)
	u, err := url.Parse(rm.key.url)
	if err != nil {
		return nil, 0, fetchErr(FailBadURL, "%w: bad URL: %v", ErrFetch, err)
	}
	if u.Scheme != "https" && !(cfg.AllowInsecure && u.Scheme == "http") {
		return nil, 0, fetchErr(FailInsecureURL, "%w: %s", ErrInsecureURL, at)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rm.key.url, nil)
	if err != nil {
		return nil, 0, fetchErr(FailBadURL, "%w: %v", ErrFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		// url.Error quotes the URL; keep only our redacted form.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fetchErr(classify(err), "%w from %s: %w", ErrFetch, at, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fetchErr(FailStatus, "%w from %s: status %d", ErrFetch, at, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, 0, fetchErr(FailRead, "%w from %s: reading body: %w", ErrFetch, at, err)
	}
	if len(body) > maxDocumentSize {
		return nil, 0, fetchErr(FailTooLarge, "%w from %s: document larger than %d bytes", ErrFetch, at, maxDocumentSize)
	}
	set, perr := ParseDocument(body)
	if set == nil {
		return nil, 0, fetchErr(FailDocument, "%w from %s: %v", ErrFetch, at, perr)
	}
	if perr != nil {
		cfg.Logger.Warn("some issuer keys did not parse and are ignored",
			"account", rm.key.account, "issuer", rm.key.issuer, "url", at, "err", perr)
	}
	return set, MaxAge(resp.Header.Get("Cache-Control"), cfg.DefaultMaxAge), nil
}

// maxRedirects bounds the redirects a key fetch follows.
const maxRedirects = 3

// errRedirect is a redirect a key fetch refuses to follow.
var errRedirect = errors.New("redirect refused")

// redirectPolicy follows at most maxRedirects redirects, and none that
// leaves https (unless insecure URLs are allowed): an https key URL that
// redirects to http would otherwise let anyone on the network path serve
// the keys.
func redirectPolicy(allowInsecure bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		switch {
		case len(via) > maxRedirects:
			return fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
		case req.URL.Scheme != "https" && !(allowInsecure && req.URL.Scheme == "http"):
			return fmt.Errorf("%w: from %s to %s, which is not https", errRedirect, RedactURL(via[len(via)-1].URL.String()), RedactURL(req.URL.String()))
		}
		return nil
	}
}

// MaxAge reads max-age from a Cache-Control header, clamped to [1m, 24h];
// def applies when there is none. no-cache and no-store give the minimum.
func MaxAge(header string, def time.Duration) time.Duration {
	age := def
	for _, d := range strings.Split(header, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-cache" || d == "no-store":
			return minMaxAge
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64); err == nil {
				age = time.Duration(min(max(n, 0), int64(maxMaxAge/time.Second))) * time.Second
			}
		}
	}
	return min(max(age, minMaxAge), maxMaxAge)
}

// RedactURL returns a URL fit for logs and errors: scheme, host and path,
// without user info, query or fragment, which may carry secrets.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

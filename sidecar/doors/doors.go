// Package doors holds the front doors that guard an app's routes through a
// route table: /v1/authz/forward, where nginx's auth_request, Traefik's
// forwardAuth and Caddy's forward_auth name the original request in
// headers; /v1/authz/envoy/<original path>, Envoy's ext_authz HTTP mode;
// and a reverse proxy in front of the app (Proxy). They answer 200 (or
// pass the request on) with the caller's identity, 401 with
// WWW-Authenticate, or 403.
package doors

import (
	"github.com/wardenauthz/warden/sidecar/internal/decisionlog"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/routes"
)

// The identity headers of an allowed request. The door sets all three on
// every answer, empty when unknown, so that a proxy copying them to the
// upstream request overwrites what a client sent itself.
const (
	HeaderAgentID   = "X-Warden-Agent-Id"
	HeaderAgentType = "X-Warden-Agent-Type"
	HeaderSubject   = "X-Warden-Subject"
	// HeaderDryRun, on a request let through by a dry-run route, says
	// what enforcing would have answered.
	HeaderDryRun = "X-Warden-Dry-Run"
)

// Door serves /v1/authz/forward and Envoy's HTTP mode.
type Door struct {
	eng       *sidecar.Engine
	table     func() *routes.Table
	opts      Options
	decisions *prometheus.CounterVec
	dlog      *decisionlog.Log
}

// Options are a door's surroundings. The zero value is a door that trusts
// no proxy and records no metrics.
type Options struct {
	// Proxies are believed about the client's address: the proxy asking
	// the door is one (--trusted-proxies).
	Proxies httpkit.Proxies
	// Registerer, when set, receives warden_route_decisions_total.
	Registerer prometheus.Registerer
	// DecisionLog (off, deny or all) and DecisionLogSample select the
	// decisions logged to Logger, as the check API's (--decision-log).
	DecisionLog       string
	DecisionLogSample float64
	Logger            *slog.Logger
}

// New returns the doors over eng, deciding with the table that table
// returns at the time of each request (nil: none is loaded).
func New(eng *sidecar.Engine, table func() *routes.Table, opts Options) *Door {
	d := &Door{eng: eng, table: table, opts: opts}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d.dlog = decisionlog.New(opts.DecisionLog, opts.DecisionLogSample, opts.Logger.With("component", "decision"))
	if opts.Registerer != nil {
		d.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_route_decisions_total",
			Help: "Requests the front doors decided through the route table, by door, route name, the route's mode and result (allow, deny, or let: a dry-run route let a denial through)."},
			[]string{"door", "route", "mode", "result"})
		opts.Registerer.MustRegister(d.decisions)
	}
	return d
}

// EnvoyPrefix is the path under which Envoy's ext_authz HTTP mode sends
// the original path (its path_prefix).
const EnvoyPrefix = "/v1/authz/envoy"

// Register adds /v1/authz/forward to mux. Envoy's HTTP door is not a
// ServeMux route: Envoy mounts it in front of the mux, which would clean
// its paths.
func (d *Door) Register(mux *http.ServeMux) {
	mux.Handle("/v1/authz/forward", httpkit.HandlerFunc(d.serveForward))
}

// Envoy wraps next so that requests under EnvoyPrefix reach Envoy's door
// as they were sent: ServeMux would clean "/a/../b" into a redirect, and
// the door must refuse it instead.
func (d *Door) Envoy(next http.Handler) http.Handler {
	door := httpkit.HandlerFunc(d.serveEnvoy)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.RequestURI, EnvoyPrefix); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
			door.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *Door) serveForward(w http.ResponseWriter, r *http.Request) error {
	method := firstOf(r.Header, "X-Forwarded-Method", "X-Original-Method")
	uri := firstOf(r.Header, "X-Forwarded-Uri", "X-Original-URI")
	switch {
	case uri == "":
		return httpkit.Errorf(http.StatusBadRequest, "the request names no original URI: send X-Forwarded-Uri (Traefik, Caddy) or X-Original-URI (nginx)")
	case method == "":
		return httpkit.Errorf(http.StatusBadRequest, "the request names no original method: send X-Forwarded-Method (Traefik, Caddy) or X-Original-Method (nginx)")
	}
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	return d.answer(w, r, "forward", method, host, uri)
}

// serveEnvoy is Envoy's ext_authz HTTP mode: the original method, the
// original path after EnvoyPrefix, the original host and headers.
func (d *Door) serveEnvoy(w http.ResponseWriter, r *http.Request) error {
	uri := strings.TrimPrefix(r.RequestURI, EnvoyPrefix)
	if uri == "" || uri[0] == '?' {
		uri = "/" + uri
	}
	return d.answer(w, r, "envoy", r.Method, r.Host, uri)
}

// answer decides the original request and answers as every proxy expects.
func (d *Door) answer(w http.ResponseWriter, r *http.Request, door, method, host, uri string) error {
	table := d.table()
	if table == nil {
		return httpkit.Errorf(http.StatusServiceUnavailable, "%s", ErrNoTable)
	}
	o, err := d.decide(w, r, table, door, strings.ToUpper(method), host, uri)
	if err != nil {
		return err
	}
	identify(w.Header(), o)
	if o.Let() {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return refuse(w, o)
}

// decide decides a request through the table, then counts and logs the
// decision; a request the table cannot take is a 400.
func (d *Door) decide(w http.ResponseWriter, r *http.Request, table *routes.Table, door, method, host, uri string) (routes.Outcome, error) {
	source := d.opts.Proxies.Client(r)
	call := d.dlog.Start(w, r, source)
	o, err := table.Decide(r.Context(), d.eng, routes.Request{Method: method, Host: host, URI: uri, Token: httpkit.Bearer(r), Source: source})
	if err != nil {
		return o, httpkit.Errorf(http.StatusBadRequest, "%s", err)
	}
	d.count(door, o)
	if call != nil {
		d.dlog.Record(r.Context(), call, o.Decision, slog.String("door", door), slog.String("route", o.Route), slog.String("mode", o.Mode),
			slog.String("method", method), slog.Bool("let", o.Let()), slog.Bool("unauthenticated", o.Unauthenticated))
	}
	return o, nil
}

// refuse answers a decision that does not let the request through: 401
// with an RFC 6750 challenge, or the decision's status.
func refuse(w http.ResponseWriter, o routes.Outcome) error {
	if o.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="warden"`
		if o.Class != sidecar.ClassMissingToken {
			// RFC 6750: a token was sent and refused.
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	return httpkit.Errorf(o.Status, "%s", o.Reason)
}

// identify sets the identity headers of an outcome on h, all three, empty
// when unknown, over whatever h held; then, when the request is let
// through, the headers of the hooks that allowed (never an X-Warden-*
// one) and the dry-run note.
func identify(h http.Header, o routes.Outcome) {
	// One allocation for the three values; the names are canonical.
	vals := []string{o.Agent.ID, string(o.Agent.Type), o.Subject}
	h[HeaderAgentID], h[HeaderAgentType], h[HeaderSubject] = vals[0:1:1], vals[1:2:2], vals[2:3:3]
	if !o.Let() {
		return
	}
	for k, v := range o.Headers {
		if !strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Warden-") {
			h.Set(k, v)
		}
	}
	if o.DryRun {
		h.Set(HeaderDryRun, "would answer "+http.StatusText(o.Status)+": "+o.Reason)
	}
}

// firstOf returns the first of the headers that is set.
func firstOf(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// count records a decision in warden_route_decisions_total.
func (d *Door) count(door string, o routes.Outcome) {
	if d.decisions == nil {
		return
	}
	result := "deny"
	switch {
	case o.DryRun:
		result = "let"
	case o.Allow:
		result = "allow"
	}
	d.decisions.WithLabelValues(door, o.Route, o.Mode, result).Inc()
}

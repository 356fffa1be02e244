package admin

import (
	"context"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RevisionHeader carries the store revision a successful write produced.
const RevisionHeader = model.RevisionHeader

var defaultNow = time.Now

// Server serves the admin API.
type Server struct {
	cfg    Config
	eng    *sidecar.Engine
	kv     *clientv3.Client
	layout storage.Layout
	log    *slog.Logger
	now    func() time.Time
	host   string // the host of BaseURL, for init issuer ids
	deps   Deps
	// requests and durations are nil without a Registerer.
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	// audit writes the audit log; nil when the retention is negative.
	audit *auditLog
}

// New returns the admin API over an engine (which authorizes callers and
// whose state the replica keeps current) and the store's client.
func New(eng *sidecar.Engine, kv *clientv3.Client, layout storage.Layout, cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin configuration: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = defaultNow
	}
	s := &Server{cfg: cfg, eng: eng, kv: kv, layout: layout, log: deps.Logger.With("component", "admin"), now: deps.Now, host: hostOf(cfg.BaseURL), deps: deps}
	if reg := deps.Registerer; reg != nil {
		s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_admin_requests_total",
			Help: "Admin API requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"})
		s.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_admin_request_duration_seconds",
			Help:    "Time to answer an admin API request, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"})
		for _, c := range []prometheus.Collector{s.requests, s.durations} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering the admin metrics: %w", err)
			}
		}
	}
	if cfg.AuditRetention > 0 {
		s.audit = newAuditLog(kv, layout.Audit, cfg.AuditRetention, s.log)
		if reg := deps.Registerer; reg != nil {
			for _, c := range s.audit.collectors() {
				if err := reg.Register(c); err != nil {
					s.audit.close()
					return nil, fmt.Errorf("registering the audit metrics: %w", err)
				}
			}
		}
	}
	return s, nil
}

// Close writes the audit entries still queued and stops the audit log.
// The server answers no request after it.
func (s *Server) Close() {
	if s.audit != nil {
		s.audit.close()
	}
}

// handle mounts h on mux, counted and timed by its route pattern when the
// server has metrics. The pattern, never the path, is the label: paths
// carry ids without bound.
func (s *Server) handle(mux *http.ServeMux, pattern string, h http.Handler) {
	if s.requests != nil {
		_, route, _ := strings.Cut(pattern, " ")
		labels := prometheus.Labels{"route": route}
		h = promhttp.InstrumentHandlerDuration(s.durations.MustCurryWith(labels),
			promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(labels), h))
	}
	mux.Handle(pattern, h)
}

// Register adds the admin routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	const acc = "/v1/account/{acc}"
	s.route(mux, "GET "+acc+"/issuer", "issuer:get", nil, s.listIssuers)
	s.route(mux, "GET "+acc+"/issuer/{id}", "issuer:get", checkIssuerID, s.getIssuer)
	s.route(mux, "POST "+acc+"/issuer/{id}", "issuer:add", checkIssuerID, s.addIssuer)
	s.route(mux, "PATCH "+acc+"/issuer/{id}", "issuer:update", checkIssuerID, s.updateIssuer)
	s.route(mux, "DELETE "+acc+"/issuer/{id}", "issuer:delete", checkIssuerID, s.deleteIssuer)
	for _, k := range []kind{userKind, clientKind} {
		base := acc + "/" + string(k.typ)
		s.route(mux, "GET "+base, k.action("get"), nil, k.bind(s.listAgents))
		s.route(mux, "POST "+base, k.action("add"), nil, k.bind(s.addAgent))
		s.route(mux, "GET "+base+"/{id}", k.action("get"), k.checkID, k.bind(s.getAgent))
		s.route(mux, "PATCH "+base+"/{id}", k.action("update"), k.checkID, k.bind(s.updateAgent))
		s.route(mux, "DELETE "+base+"/{id}", k.action("delete"), k.checkID, k.bind(s.deleteAgent))
		s.route(mux, "POST "+base+"/{id}/init", k.action("init"), k.checkID, k.bind(s.mintInit))
	}
	s.route(mux, "GET "+acc+"/me", "", nil, s.me)
	s.route(mux, "GET "+acc+"/hook", "hook:get", nil, s.listHooks)
	s.route(mux, "GET "+acc+"/hook/{id}", "hook:get", checkHookName, s.getHook)
	s.route(mux, "PUT "+acc+"/hook/{id}", "hook:put", checkHookName, s.putHook)
	s.route(mux, "DELETE "+acc+"/hook/{id}", "hook:delete", checkHookName, s.deleteHook)
	s.route(mux, "GET "+acc+"/audit", "audit:get", nil, s.listAudit)
	s.route(mux, "GET "+acc+"/routes", "routes:get", nil, s.listRouteTables)
	s.route(mux, "GET "+acc+"/routes/{id}", "routes:get", checkRouteTableName, s.getRouteTable)
	s.route(mux, "PUT "+acc+"/routes/{id}", "routes:put", checkRouteTableName, s.putRouteTable)
	s.route(mux, "DELETE "+acc+"/routes/{id}", "routes:delete", checkRouteTableName, s.deleteRouteTable)
	s.route(mux, "POST "+acc+"/routes/{id}/test", "routes:get", checkRouteTableName, s.testRouteTable)
	s.handle(mux, "POST "+acc+"/init", s.serve("", nil, s.enroll, false))
}

// RegisterRefusal answers every admin route with 404 and a message saying
// that this node serves checks only: what a --role sidecar node mounts.
func RegisterRefusal(mux *http.ServeMux) {
	mux.HandleFunc("/v1/account/", func(w http.ResponseWriter, r *http.Request) {
		httpkit.WriteError(w, http.StatusNotFound,
			"This Warden node serves checks only (--role sidecar); send admin requests to a node running with --role admin or all")
	})
}

// call is one admin request, authenticated and authorized.
type call struct {
	r      *http.Request
	w      http.ResponseWriter
	acc    string
	id     string // the {id} path value, unescaped
	caller sidecar.Principal
	// rev is the store revision a write produced, sent as RevisionHeader.
	rev int64
}

// body reads and parses the request body as an object with fields among
// allowed.
func (c *call) body(allowed ...string) (*object, error) {
	raw, err := httpkit.ReadBody(c.w, c.r, httpkit.MaxBodySize)
	if err != nil {
		return nil, err
	}
	return parseObject(raw, allowed...)
}

// who names the caller for messages: "user 'usr-…'" or "client 'clt-…'".
func (c *call) who() string {
	a := c.caller.Agent()
	return fmt.Sprintf("%s '%s'", a.Type, a.ID)
}

// A handler answers a call with a body to send as JSON (nil for 204) or an
// error.
type handler func(*call) (any, error)

// route mounts a handler behind authorization by action on the request
// path. checkID, when set, validates the {id} path value.
func (s *Server) route(mux *http.ServeMux, pattern, action string, checkID func(string) error, h handler) {
	s.handle(mux, pattern, s.serve(action, checkID, h, true))
}

// serve checks, in Fusebit's order: malformed path ids (400), then the
// caller's authorization (403), then lets the handler read the body.
func (s *Server) serve(action string, checkID func(string) error, h handler, authorize bool) httpkit.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		c := &call{r: r, w: w, acc: r.PathValue("acc"), id: r.PathValue("id")}
		body, err := s.dispatch(c, action, checkID, h, authorize)
		if err != nil {
			return s.storeError(r, err)
		}
		if c.rev != 0 {
			w.Header().Set(RevisionHeader, strconv.FormatInt(c.rev, 10))
		}
		if body == nil {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		httpkit.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

func (s *Server) dispatch(c *call, action string, checkID func(string) error, h handler, authorize bool) (any, error) {
	if !model.ValidID(model.AccountPrefix, c.acc) {
		// Fusebit names the account's parameter before its message.
		return nil, badRequest("accountId: %s", patternError("accountId", c.acc, model.AccountPrefix))
	}
	if checkID != nil {
		if err := checkID(c.id); err != nil {
			return nil, err
		}
	}
	if authorize {
		err := s.authorize(c, action)
		if action != "" && err != errNotLoaded {
			s.auditCall(c, action, err == nil)
		}
		if err != nil {
			return nil, err
		}
	}
	return h(c)
}

func patternError(field, value, prefix string) error {
	return badRequest(`"%s" with value "%s" fails to match the required pattern: /%s/`, field, truncate(value, 64), model.IDPattern(prefix))
}

// checkIssuerID validates an issuer id from the path: not empty, printable,
// at most maxIDLen bytes.
func checkIssuerID(id string) error {
	switch {
	case id == "":
		return badRequest(`"issuerId" is not allowed to be empty`)
	case len(id) > maxIDLen:
		return badRequest(`"issuerId" length must be less than or equal to %d characters long`, maxIDLen)
	case !printable(id):
		return badRequest(`"issuerId" must not contain control characters`)
	}
	return nil
}

// authorize authenticates the caller in the path's account and requires
// action on the request path after /v1, as received (still escaped) and
// normalized. An empty action only requires a resolved agent.
func (s *Server) authorize(c *call, action string) error {
	snap := s.eng.Snapshot()
	if snap.Revision == 0 {
		return errNotLoaded
	}
	token := httpkit.Bearer(c.r)
	p, err := s.eng.Authenticate(c.r.Context(), snap, token, c.acc)
	c.caller = p // the audit log names a verified caller, even one refused
	if err != nil || p.Agent().ID == "" || p.Denial() != nil {
		return errUnauthorized
	}
	if action == "" {
		return nil
	}
	resource := strings.TrimPrefix(c.r.URL.EscapedPath(), "/v1")
	if d := p.Decide(action, resource); !d.Allow {
		return errUnauthorized
	}
	return nil
}

// storeError returns a handler's error as it is answered. Errors of writes
// come classified from commit; what is left are reads of the store, before
// anything was written: 503.
func (s *Server) storeError(r *http.Request, err error) error {
	var he *httpkit.Error
	if errors.As(err, &he) {
		return err
	}
	s.log.Warn("an admin request could not read the store", "method", r.Method, "path", r.URL.EscapedPath(), "error", err.Error())
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return httpkit.Errorf(http.StatusServiceUnavailable, "The store did not answer in time; nothing was written")
	}
	return httpkit.Errorf(http.StatusServiceUnavailable, "The store is unavailable (%s); nothing was written", err)
}

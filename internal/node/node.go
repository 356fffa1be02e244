// Package node assembles a Warden node over a store, in one place: the
// replica that fills the state, the engine, the policy hooks, the check API
// and the admin API, as its role asks, and their diagnostics. warden serve
// and admintest build their nodes with it.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/admin/console"
	"github.com/wardenauthz/warden/docs"
	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/checkapi"
	"github.com/wardenauthz/warden/sidecar/doors"
	"github.com/wardenauthz/warden/sidecar/doors/extauthz"
	"github.com/wardenauthz/warden/sidecar/hooks"
	"github.com/wardenauthz/warden/sidecar/routes"
	"github.com/wardenauthz/warden/sidecar/state"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Role is what a node serves.
type Role string

// Roles.
const (
	// RoleAll serves checks and the admin API.
	RoleAll Role = "all"
	// RoleAdmin serves the admin API; checks are refused with 404.
	RoleAdmin Role = "admin"
	// RoleSidecar serves checks; the admin API is refused with 404.
	RoleSidecar Role = "sidecar"
)

// Config is what a node is built from. The zero value of each field is its
// default.
type Config struct {
	// Role defaults to RoleAll.
	Role   Role
	Engine sidecar.Config
	Checks checkapi.Config
	Hooks  policywasm.Config
	Admin  admin.Config
	// DataDir holds the root init token's file, which an admin node
	// removes once the token is used or expired; "" when there is none.
	DataDir string
	// ProgressInterval is how often the replica asks etcd to confirm its
	// watch is current (storage.ReplicaConfig). Default 1s.
	ProgressInterval time.Duration
	// RoutesFile is the route table of the front doors (--routes),
	// reloaded when it changes; "" when there is none.
	RoutesFile string
	// RouteTable names the route table kept in the store that the front
	// doors serve instead (--route-table), as account and name; the zero
	// value when there is none.
	RouteTable TableRef
	// TrustedProxies are believed about the client's address
	// (--trusted-proxies), at every door.
	TrustedProxies httpkit.Proxies
	// Upstream, when set, is the app the reverse-proxy door guards
	// (--upstream): ProxyHandler serves it.
	Upstream *url.URL
}

// TableRef names a route table kept in the store.
type TableRef struct{ Account, Name string }

// Deps are what a node takes from its surroundings.
type Deps struct {
	// Client is the store's client; the node does not close it.
	Client *clientv3.Client
	Layout storage.Layout
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registry receives every part's metrics, and DiagHandler serves
	// them; nil: a registry of the node's own.
	Registry *prometheus.Registry
}

// Node is an assembled node. Its background work runs until Close.
type Node struct {
	// Engine decides checks; Replica fills its state; Hooks keeps its
	// policy hooks attached (nil on an admin node).
	Engine  *sidecar.Engine
	Replica *storage.Replica
	Hooks   *hooks.Manager
	// Routes serves the route table of RoutesFile or RouteTable; nil
	// without one.
	Routes routes.Source

	// extAuthz is Envoy's ext_authz gRPC door; nil on an admin node.
	extAuthz *extauthz.Server

	api, diag, proxy http.Handler
	// stop ends the background work; closers then release what it used.
	stop    context.CancelFunc
	closers []func()
}

// New assembles a node and starts its background work: the replica, the
// key refresher and the hook manager.
func New(cfg Config, deps Deps) (_ *Node, err error) {
	if cfg.Role == "" {
		cfg.Role = RoleAll
	}
	switch cfg.Role {
	case RoleAll, RoleAdmin, RoleSidecar:
	default:
		return nil, fmt.Errorf("role %q must be one of all, admin, sidecar", cfg.Role)
	}
	if deps.Client == nil {
		return nil, errors.New("node: no store client")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	// The replica and the key refresher outlive the drain of warden serve:
	// requests still in flight after SIGTERM need a current state.
	runCtx, stopRun := context.WithCancel(context.Background())
	n := &Node{stop: stopRun}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	st := state.New()
	if n.Engine, err = sidecar.New(st, cfg.Engine, sidecar.Deps{Logger: log, Registerer: reg}); err != nil {
		return nil, err
	}
	go n.Engine.Run(runCtx)

	// Policy hooks: compiled off the check path, attached as the store
	// says, checked before an admin write stores them. Their records reach
	// the node through the replica's watch, with the rest of the state.
	hookRT, err := policywasm.NewRuntime(runCtx, cfg.Hooks)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { hookRT.Close(context.Background()) })
	followers := map[string]storage.Follower{}
	if cfg.Role != RoleAdmin {
		n.Hooks = hooks.New(hooks.Config{Client: deps.Client, Layout: deps.Layout, Runtime: hookRT, Engine: n.Engine, Logger: log, Registerer: reg})
		followers[storage.KindHook] = n.Hooks
		n.Engine.AwaitHooksWith(n.Hooks.WaitRevision)
		go n.Hooks.Run(runCtx)
		n.closers = append(n.closers, func() { n.Hooks.Close(context.Background()) })
	}
	if cfg.Role != RoleSidecar && cfg.DataDir != "" {
		cleaner, err := admin.NewRootTokenCleaner(cfg.DataDir, deps.Layout, log)
		if err != nil {
			log.Warn("the root init token's file will not be removed once used", "error", err.Error())
		} else if cleaner != nil {
			followers[storage.KindInit] = cleaner
		}
	}
	var storeRoutes *routes.StoreSource
	if cfg.RouteTable.Name != "" && cfg.Role != RoleAdmin {
		storeRoutes = routes.NewStoreSource(deps.Layout, cfg.RouteTable.Account, cfg.RouteTable.Name, log, reg)
		followers[storage.KindRouteTable] = storeRoutes
		go storeRoutes.Run(runCtx)
		n.Routes = storeRoutes
	}
	n.Replica = storage.NewReplica(storage.ReplicaConfig{Client: deps.Client, Layout: deps.Layout, State: st, Logger: log,
		ProgressInterval: cfg.ProgressInterval, Followers: followers, Registerer: reg})
	go n.Replica.Run(runCtx)

	mux := http.NewServeMux()
	var api http.Handler = mux
	if cfg.Role == RoleAdmin {
		checkapi.RegisterRefusal(mux)
	} else {
		cfg.Checks.Proxies = cfg.TrustedProxies
		checks, err := checkapi.New(n.Engine, cfg.Checks, log)
		if err != nil {
			return nil, err
		}
		checks.Register(mux)
		table := func() *routes.Table { return nil }
		switch {
		case cfg.RoutesFile != "" && storeRoutes != nil:
			return nil, errors.New("a node serves one route table: from a file or from the store, not both")
		case cfg.RoutesFile != "":
			file, err := routes.NewFileSource(cfg.RoutesFile, log, reg)
			if err != nil {
				return nil, err
			}
			go file.Run(runCtx, time.Second)
			n.Routes = file
		}
		if n.Routes != nil {
			table = n.Routes.Table
		}
		door := doors.New(n.Engine, table, doors.Options{Proxies: cfg.TrustedProxies, Registerer: reg,
			DecisionLog: cfg.Checks.DecisionLog, DecisionLogSample: cfg.Checks.DecisionLogSample, Logger: log})
		door.Register(mux)
		api = door.Envoy(mux)
		n.extAuthz = extauthz.New(door, extauthz.Options{TrustedProxies: cfg.TrustedProxies, Logger: log})
		if cfg.Upstream != nil {
			n.proxy = doors.NewProxy(door, cfg.Upstream)
		}
	}
	if cfg.Role == RoleSidecar {
		admin.RegisterRefusal(mux)
	} else {
		ad := admin.Deps{Logger: log, CheckModule: hookRT.Check, Registerer: reg}
		if n.Hooks != nil {
			ad.AwaitHooks, ad.HookState = n.Hooks.WaitRevision, n.Hooks.HookState
		}
		if storeRoutes != nil {
			ad.AwaitRoutes = storeRoutes.WaitRevision
		}
		adm, err := admin.New(n.Engine, deps.Client, deps.Layout, cfg.Admin, ad)
		if err != nil {
			return nil, err
		}
		adm.Register(mux)
		n.closers = append(n.closers, adm.Close)
		// The web console calls the admin API, so it is served where
		// that is.
		console.Register(mux)
	}
	// Fusebit's health route, on the API listener: 200 with no body when
	// the node can serve, else 503 saying why.
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		if r := n.Ready(); !r.Ready {
			httpkit.WriteError(w, http.StatusServiceUnavailable, "This Warden node cannot serve yet: "+r.Reason)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// The body of /readyz, on the API listener, for every role and
	// without a token: for a client that reaches only this listener (the
	// web console). Always 200: whether the node is ready is in the body.
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		httpkit.WriteJSON(w, http.StatusOK, n.Ready().public())
	})
	// The OpenAPI document of every route, for every role and without a
	// token: converted from docs/openapi.yaml once per process.
	spec, err := docs.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		httpkit.SetJSON(w)
		_, _ = w.Write(spec)
	})
	n.api, n.diag = api, n.diagMux(reg, log)
	return n, nil
}

// Handler serves the node's APIs.
func (n *Node) Handler() http.Handler { return n.api }

// ExtAuthz is Envoy's ext_authz gRPC door, for a gRPC server to register;
// nil on an admin node.
func (n *Node) ExtAuthz() *extauthz.Server { return n.extAuthz }

// ProxyHandler serves the reverse-proxy door; nil without an upstream.
func (n *Node) ProxyHandler() http.Handler { return n.proxy }

// DiagHandler serves /healthz, /readyz and /metrics.
func (n *Node) DiagHandler() http.Handler { return n.diag }

// Close stops the background work (the replica, the hook manager, the key
// refresher), then releases what it used. Closing again does nothing.
func (n *Node) Close() {
	n.stop()
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// Readiness is the body of /readyz: the replica's status, and the hooks'
// on nodes that serve checks.
type Readiness struct {
	storage.Status
	Hooks  *hooks.Status  `json:"hooks,omitempty"`
	Routes *routes.Status `json:"routes,omitempty"`
}

// public is r as GET /v1/status shows it to callers without a token: the
// accounts that have hooks and where the route table is read from stay on
// the diagnostics listener.
func (r Readiness) public() Readiness {
	if r.Hooks != nil {
		h := *r.Hooks
		h.ByAccount = nil
		r.Hooks = &h
	}
	if r.Routes != nil {
		rs := *r.Routes
		rs.Source = ""
		r.Routes = &rs
	}
	return r
}

// Ready says whether the node's state is loaded, its watch current, its
// hooks attached and its route table, if it has one, loaded.
func (n *Node) Ready() Readiness {
	body := Readiness{Status: n.Replica.Status()}
	if n.Routes != nil {
		rs := n.Routes.Status()
		body.Routes = &rs
		if !rs.Loaded {
			if body.Ready || body.Reason == "" {
				body.Reason = "no route table is serving: " + rs.Error
			}
			body.Ready = false
		}
	}
	if n.Hooks != nil {
		hs := n.Hooks.Status()
		body.Hooks = &hs
		if !hs.Ready {
			body.Ready = false
			if body.Reason == "" {
				body.Reason = hs.Reason
			}
		}
	}
	return body
}

// WaitReady waits until the node is ready, or ctx ends.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		r := n.Ready()
		if r.Ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node is not ready: %s", r.Reason)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// diagMux serves /healthz (the process runs), /readyz and /metrics.
func (n *Node) diagMux(reg *prometheus.Registry, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		body := n.Ready()
		code := http.StatusOK
		if !body.Ready {
			code = http.StatusServiceUnavailable
		}
		httpkit.WriteJSON(w, code, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	return mux
}

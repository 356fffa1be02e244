package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/internal/node"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/checkapi"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/internal/connlimit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// drainTimeout bounds how long in-flight requests may take after SIGTERM.
const drainTimeout = 10 * time.Second

// Roles of a node.
const (
	roleAll     = string(node.RoleAll)
	roleAdmin   = string(node.RoleAdmin)
	roleSidecar = string(node.RoleSidecar)
)

// serveConfig is the configuration of warden serve: one struct, read from
// the YAML file (--config) through its tags, then from WARDEN_* variables
// and flags, each over the last. Every key is a flag's name.
type serveConfig struct {
	Listen         string            `yaml:"listen"`
	DiagListen     string            `yaml:"diag-listen"`
	BaseURL        string            `yaml:"base-url"`
	DataDir        string            `yaml:"data-dir"`
	Role           string            `yaml:"role"`
	EtcdEndpoints  []string          `yaml:"etcd-endpoints"`
	EtcdListen     string            `yaml:"etcd-listen"`
	Routes         string            `yaml:"routes"`
	RouteTable     string            `yaml:"route-table"`
	TrustedProxies []string          `yaml:"trusted-proxies"`
	Upstream       string            `yaml:"upstream"`
	ProxyListen    string            `yaml:"proxy-listen"`
	GRPCListen     string            `yaml:"grpc-listen"`
	AuditRetention time.Duration     `yaml:"audit-retention"`
	TLS            tlsConfig         `yaml:",inline"`
	EtcdTLS        etcdTLSConfig     `yaml:",inline"`
	Bootstrap      bootstrapConfig   `yaml:",inline"`
	HTTP           httpLimits        `yaml:",inline"`
	Engine         sidecar.Config    `yaml:",inline"`
	Checks         checkapi.Config   `yaml:",inline"`
	Hooks          policywasm.Config `yaml:",inline"`
	// ConfigFile is --config: not a key of the file itself.
	ConfigFile string `yaml:"-"`

	// boot is Bootstrap completed: the key read, the account and the
	// data directory filled.
	boot admin.BootstrapOptions
	// proxies are TrustedProxies parsed; upstream is Upstream.
	proxies  httpkit.Proxies
	upstream *url.URL
	// routeTable is --route-table, parsed; its account is "" when it
	// named none.
	routeTable node.TableRef
}

// bootstrapConfig registers an issuer and the root client's identity on
// every start.
type bootstrapConfig struct {
	Issuer        string `yaml:"bootstrap-issuer"`
	Subject       string `yaml:"bootstrap-subject"`
	PublicKeyFile string `yaml:"bootstrap-public-key"`
	KeyID         string `yaml:"bootstrap-key-id"`
}

// httpLimits bound what a client can hold of the HTTP servers.
type httpLimits struct {
	// MaxConns caps the API listener's connections (the diagnostics one
	// holds at most diagMaxConns).
	MaxConns     int           `yaml:"max-connections"`
	ReadTimeout  time.Duration `yaml:"read-timeout"`
	WriteTimeout time.Duration `yaml:"write-timeout"`
	IdleTimeout  time.Duration `yaml:"idle-timeout"`
}

func newServeFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = serveUsage(fs)
	f := &serveConfig{}
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:7800", "`address` of the admin and check APIs")
	fs.StringVar(&f.DiagListen, "diag-listen", "127.0.0.1:7801", "`address` of /metrics, /healthz and /readyz")
	fs.StringVar(&f.BaseURL, "base-url", "", "this deployment's `URL`: the default token audience and the baseUrl of init tokens (default http://, or https:// with --tls-cert, + listen address)")
	fs.StringVar(&f.DataDir, "data-dir", "./warden-data", "`directory` of the embedded etcd's data and the bootstrap files")
	fs.StringVar(&f.Role, "role", roleAll, "what this node serves: all, admin (the admin API) or sidecar (checks only, never writes)")
	fs.Var((*listFlag)(&f.EtcdEndpoints), "etcd-endpoints", "`URLs` of an external etcd cluster, comma-separated, instead of the embedded one")
	fs.Var((*listFlag)(&f.TrustedProxies), "trusted-proxies", "`CIDRs` of proxies whose X-Forwarded-For and X-Real-IP are believed, comma-separated (default: none)")
	fs.StringVar(&f.Upstream, "upstream", "", "reverse-proxy mode: the `URL` of the app to guard, on --proxy-listen")
	fs.StringVar(&f.ProxyListen, "proxy-listen", "", "reverse-proxy mode: the `address` the guarded app is reached at (port 0: the system picks one)")
	fs.StringVar(&f.GRPCListen, "grpc-listen", "", "the `address` of Envoy's ext_authz gRPC server, deciding through the route table, in plain text even with --tls-cert (port 0: the system picks one; default: off)")
	fs.StringVar(&f.Routes, "routes", "", "`file` with the route table of the front doors (YAML; reloaded when it changes)")
	fs.StringVar(&f.RouteTable, "route-table", "", "the route table kept in the store that the front doors serve, by `name` (of --account) or account/name; instead of --routes")
	fs.StringVar(&f.EtcdListen, "etcd-listen", "", "client `URL` of the embedded etcd (default: a unix socket in the data directory)")
	fs.StringVar(&f.Engine.DefaultAccount, "account", "", "the `account` created on first start and the default for checks (default: random on first start)")
	fs.Var((*listFlag)(&f.Engine.Audiences), "audience", "accepted aud `values`, comma-separated (default: the base URL)")
	fs.DurationVar(&f.Engine.Leeway, "leeway", 0, "clock skew allowed on exp and nbf")
	fs.BoolVar(&f.Engine.AllowInsecureKeyURLs, "allow-insecure-key-urls", false, "accept http:// key URLs (loopback tests only)")
	fs.BoolVar(&f.Engine.AllowTokensWithoutExp, "allow-tokens-without-exp", false, "accept tokens that carry no exp")
	fs.DurationVar(&f.Engine.MaxKeyStaleness, "max-key-staleness", 24*time.Hour, "how long fetched keys outlive failed refreshes")
	fs.DurationVar(&f.Checks.MinRevisionWait, "min-revision-wait", time.Second, "how long a check waits for minRevision")
	fs.DurationVar(&f.Checks.BatchTimeout, "batch-timeout", 2*time.Second, "how long a batch of checks may take as a whole; one that runs past it answers 503")
	fs.IntVar(&f.Engine.TokenCacheSize, "token-cache-size", 100_000, "verified tokens kept in the token cache (`N`; -1: no cache)")
	fs.StringVar(&f.Engine.PermissionsClaim, "permissions-claim", sidecar.DefaultPermissionsClaim, "the inline-permissions `claim`")
	fs.StringVar(&f.Bootstrap.Issuer, "bootstrap-issuer", "", "an `issuer` to register on every start, whose subject --bootstrap-subject becomes the root client's identity")
	fs.StringVar(&f.Bootstrap.Subject, "bootstrap-subject", "", "the root client's `subject` at --bootstrap-issuer")
	fs.StringVar(&f.Bootstrap.PublicKeyFile, "bootstrap-public-key", "", "`file` with the PEM public key of --bootstrap-issuer")
	fs.StringVar(&f.Bootstrap.KeyID, "bootstrap-key-id", "", "the key id of --bootstrap-public-key (default: its RFC 7638 thumbprint)")
	fs.DurationVar(&f.Hooks.Timeout, "hook-timeout", 50*time.Millisecond, "deadline of one call of a policy hook")
	fs.Func("hook-memory-pages", "memory cap of a policy hook instance, in 64 KiB `pages` (default 512)", pagesFlag(&f.Hooks.MemoryLimitPages))
	fs.Func("hook-memory-total-pages", "memory cap of all policy hook instances together, in 64 KiB `pages` (default 16384, 1 GiB)", pagesFlag(&f.Hooks.MemoryTotalPages))
	fs.IntVar(&f.Hooks.PoolSize, "hook-pool-size", 0, "instances of each policy hook (default GOMAXPROCS)")
	fs.StringVar(&f.Hooks.CacheDir, "hook-cache-dir", "", "`directory` keeping compiled policy hooks across restarts (default: in memory)")
	fs.IntVar(&f.Engine.TimingSample, "check-timing-sample", sidecar.DefaultTimingSample, "time one check in `N` for warden_check_duration_seconds (1: every check, about 45 ns each); every check is counted")
	fs.StringVar(&f.Checks.DecisionLog, "decision-log", checkapi.DecisionLogOff, "log the check API's decisions to stderr as JSON: off, deny (denials only) or all")
	fs.Float64Var(&f.Checks.DecisionLogSample, "decision-log-sample", 1, "the `share` of the selected decisions logged, from 0 (exclusive) to 1")
	fs.IntVar(&f.HTTP.MaxConns, "max-connections", defaultMaxConns, "connections the API listener holds at most; at the cap, a new one takes the place of the one idle the longest")
	fs.DurationVar(&f.HTTP.ReadTimeout, "read-timeout", 30*time.Second, "how long a client may take to send a whole request, body included")
	fs.DurationVar(&f.HTTP.WriteTimeout, "write-timeout", 3*time.Minute, "how long a request may take until its answer is written (longer than the slowest route: a hook upload compiles its module)")
	fs.DurationVar(&f.HTTP.IdleTimeout, "idle-timeout", 90*time.Second, "how long a keep-alive connection may wait for its next request")
	fs.DurationVar(&f.AuditRetention, "audit-retention", admin.DefaultAuditRetention, "how long the audit entries of admin API calls are kept (negative: no audit log)")
	addTLSFlags(fs, f)
	fs.StringVar(&f.ConfigFile, "config", "", "YAML `file` with the same keys as the flags")
	return fs, f
}

// complete checks the configuration, reporting every problem at once:
// its own rules, and each part's Validate (the engine's, the check API's,
// the hooks'), so that a rule is written once, whether the value came from
// a flag, a variable or the file. It then completes the bootstrap options.
func (f *serveConfig) complete() error {
	var errs []error
	switch f.Role {
	case roleAll, roleAdmin, roleSidecar:
	default:
		errs = append(errs, fmt.Errorf("role %q must be one of all, admin, sidecar", f.Role))
	}
	var err error
	if f.proxies, err = httpkit.ParseProxies(f.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted-proxies: %w", err))
	}
	switch {
	case (f.Upstream == "") != (f.ProxyListen == ""):
		errs = append(errs, errors.New("upstream and proxy-listen go together: the app to guard, and where it is reached"))
	case f.Upstream != "" && f.Routes == "" && f.RouteTable == "":
		errs = append(errs, errors.New("upstream: the reverse proxy decides through a route table; give routes or route-table too"))
	case f.Upstream != "":
		if u, err := url.Parse(f.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("upstream %q is not an http:// or https:// URL", f.Upstream))
		} else {
			f.upstream = u
		}
	}
	if (f.Routes != "" || f.RouteTable != "") && f.Role == roleAdmin {
		errs = append(errs, errors.New("routes, route-table: the route table serves the front doors, which a node of role admin does not serve"))
	}
	if f.GRPCListen != "" && f.Role == roleAdmin {
		errs = append(errs, errors.New("grpc-listen: Envoy's ext_authz door decides checks, which a node of role admin does not serve"))
	}
	if f.Routes != "" && f.RouteTable != "" {
		errs = append(errs, errors.New("routes and route-table: a node serves one route table, from a file or from the store"))
	}
	if f.RouteTable != "" {
		acc, name, ok := strings.Cut(f.RouteTable, "/")
		if !ok {
			acc, name = "", f.RouteTable
		}
		switch {
		case ok && !model.ValidID(model.AccountPrefix, acc):
			errs = append(errs, fmt.Errorf("route-table %q: the account %q does not match %s", f.RouteTable, acc, model.IDPattern(model.AccountPrefix)))
		case model.ValidateHookName(name) != nil:
			errs = append(errs, fmt.Errorf("route-table %q: the name %q must match /%s/", f.RouteTable, name, model.HookNamePattern))
		}
		f.routeTable = node.TableRef{Account: acc, Name: name}
	}
	if len(f.EtcdEndpoints) > 0 && f.EtcdListen != "" {
		errs = append(errs, errors.New("etcd-listen configures the embedded etcd, which etcd-endpoints replaces"))
	}
	errs = append(errs, f.validateTLS()...)
	f.boot = admin.BootstrapOptions{Issuer: f.Bootstrap.Issuer, Subject: f.Bootstrap.Subject, KeyID: f.Bootstrap.KeyID}
	if f.Bootstrap.PublicKeyFile != "" {
		pem, err := os.ReadFile(f.Bootstrap.PublicKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap-public-key: %w", err))
		}
		f.boot.PublicKeyPEM = string(pem)
	}
	if f.HTTP.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("max-connections %d must be at least 1", f.HTTP.MaxConns))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"read-timeout", f.HTTP.ReadTimeout}, {"write-timeout", f.HTTP.WriteTimeout}, {"idle-timeout", f.HTTP.IdleTimeout}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", t.name, t.d))
		}
	}
	// The audience defaults to the base URL, known once the listener is
	// bound; the engine's rule on it applies to what was given.
	engine := f.Engine
	if len(engine.Audiences) == 0 {
		engine.Audiences = []string{"the base URL"}
	}
	errs = append(errs, engine.Validate(), f.Checks.Validate(), f.Hooks.Validate())
	f.boot.Account, f.boot.DataDir = f.Engine.DefaultAccount, f.DataDir
	return errors.Join(errs...)
}

// bound completes the flags that depend on the address the API listener
// was bound to: the base URL, and the audience. The base URL is --listen as
// given ("http://localhost:7800" stays so, and tokens minted for it keep
// passing), https:// with --tls-cert; only a port 0 is replaced by the
// port the system chose.
func (f *serveConfig) bound(apiAddr string) {
	if f.BaseURL == "" {
		scheme := "http://"
		if f.TLS.on() {
			scheme = "https://"
		}
		f.BaseURL = scheme + f.Listen
		host, port, err := net.SplitHostPort(f.Listen)
		if _, bport, berr := net.SplitHostPort(apiAddr); err == nil && berr == nil && port == "0" {
			if host == "" {
				f.BaseURL = scheme + apiAddr
			} else {
				f.BaseURL = scheme + net.JoinHostPort(host, bport)
			}
		}
	}
	if len(f.Engine.Audiences) == 0 {
		f.Engine.Audiences = []string{f.BaseURL}
	}
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs, f := newServeFlags(stderr)
	if err := loadConfig(fs, f, args); err != nil {
		return err
	}
	if err := f.complete(); err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if f.Engine.AllowInsecureKeyURLs {
		log.Warn("accepting http:// key URLs: tokens can be forged by anyone on the network path to the key server; use only for loopback tests")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The listeners are bound first: a start that cannot serve fails
	// before it creates a store or an init token. Until the node is
	// assembled they answer 503 (and /healthz 200).
	certs, err := loadTLS(f, log)
	if err != nil {
		return err
	}
	if certs != nil {
		go certs.Run(ctx)
	}
	srv, err := listen(f, certs, log)
	if err != nil {
		return err
	}
	defer srv.close()
	errc := srv.serve()

	// A data directory this start creates is removed again if the start
	// fails, store and init token included.
	fresh, err := claimDataDir(f)
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if fresh && !started {
			if err := os.RemoveAll(f.DataDir); err == nil {
				log.Info("removed the data directory this failed start created", "data_dir", f.DataDir)
			}
		}
	}()
	store, err := openStore(f, log)
	if err != nil {
		return err
	}
	defer store.close()
	layout := storage.NewLayout("")
	adminCfg := admin.Config{BaseURL: f.BaseURL, AuditRetention: f.AuditRetention}
	srv.setStarting("bootstrapping the store, or waiting for it to be bootstrapped")
	if err := resolveAccount(ctx, f, store.client, layout, adminCfg, log); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while starting")
			return nil
		}
		return err
	}
	n, err := assemble(f, store.client, layout, adminCfg, log, srv.listeners())
	if err != nil {
		return err
	}
	defer n.Close()
	started = true
	srv.ready(n.Handler(), n.DiagHandler(), n.ProxyHandler(), n.ExtAuthz())
	go srv.followReadiness(ctx, n)
	log.Info("warden serving", "listen", srv.apiAddr, "diag_listen", srv.diagAddr, "role", f.Role,
		"account", f.Engine.DefaultAccount, "audiences", f.Engine.Audiences, "version", version)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	case err := <-store.failed:
		log.Error("the store failed; exiting so that the process is started again", "error", err.Error())
		return err
	}
	log.Info("shutting down; draining in-flight requests", "timeout", drainTimeout.String())
	return srv.shutdown()
}

// assemble builds the node over the store, with the process's metrics
// registry and the listeners' connection counts in it.
func assemble(f *serveConfig, client *clientv3.Client, layout storage.Layout, adminCfg admin.Config, log *slog.Logger, conns map[string]*connlimit.Listener) (*node.Node, error) {
	reg := newRegistry()
	reg.MustRegister(connCollector(conns))
	n, err := node.New(node.Config{Role: node.Role(f.Role), Engine: f.Engine, Checks: f.Checks, Hooks: f.Hooks, Admin: adminCfg, DataDir: f.DataDir, RoutesFile: f.Routes, RouteTable: f.tableRef(), TrustedProxies: f.proxies, Upstream: f.upstream},
		node.Deps{Client: client, Layout: layout, Logger: log, Registry: reg})
	if err != nil {
		// The configuration was checked before (complete): what fails
		// here fails at run time.
		return nil, err
	}
	return n, nil
}

// tableRef is the route table of --route-table, in the default account
// when it names none: known once the account is resolved.
func (f *serveConfig) tableRef() node.TableRef {
	ref := f.routeTable
	if ref.Name != "" && ref.Account == "" {
		ref.Account = f.Engine.DefaultAccount
	}
	return ref
}

// claimDataDir creates the data directory of the embedded store, and says
// whether this start created it: only then may a failed start remove it.
// Of two processes starting on a new directory at once, one creates it.
func claimDataDir(f *serveConfig) (bool, error) {
	if len(f.EtcdEndpoints) > 0 {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(f.DataDir)), 0o755); err != nil {
		return false, fmt.Errorf("--data-dir: %w", err)
	}
	err := os.Mkdir(f.DataDir, 0o700)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	return false, fmt.Errorf("--data-dir: %w", err)
}

// store is the node's connection to etcd; failed receives why the embedded
// server stopped, if it does.
type store struct {
	client *clientv3.Client
	failed <-chan error
	close  func()
}

// startEmbedded starts the embedded etcd server; tests replace it.
var startEmbedded = storage.StartEmbedded

// openStore connects to the external etcd cluster (over TLS with the
// --etcd-cacert, --etcd-cert and --etcd-key files), or starts the embedded
// server and connects to it.
func openStore(f *serveConfig, log *slog.Logger) (*store, error) {
	endpoints := []string(f.EtcdEndpoints)
	s := &store{close: func() {}}
	if len(endpoints) == 0 {
		start := time.Now()
		emb, err := startEmbedded(storage.EmbeddedConfig{DataDir: f.DataDir, ClientURL: f.EtcdListen})
		if err != nil {
			return nil, err
		}
		s.close, s.failed = emb.Close, emb.Failed()
		endpoints = []string{emb.Endpoint()}
		log.Info("embedded etcd started", "data_dir", f.DataDir, "endpoint", emb.Endpoint(), "took", time.Since(start).Round(time.Millisecond).String())
	}
	ctx, stop := context.WithCancel(context.Background())
	tlsCfg, err := etcdClientTLS(ctx, f, log)
	if err != nil {
		stop()
		s.close()
		return nil, err
	}
	client, err := storage.DialTLS(tlsCfg, endpoints...)
	if err != nil {
		stop()
		s.close()
		return nil, err
	}
	closeServer := s.close
	s.client, s.close = client, func() { client.Close(); stop(); closeServer() }
	return s, nil
}

// storeWait bounds how long a starting node waits for the store.
const storeWait = 60 * time.Second

// resolveAccount sets the default account: an admin node bootstraps the
// store (or reads what the first start created); a sidecar, which never
// writes, takes --account or waits for an admin node to bootstrap.
func resolveAccount(ctx context.Context, f *serveConfig, client *clientv3.Client, layout storage.Layout, cfg admin.Config, log *slog.Logger) error {
	if f.Role != roleSidecar {
		bctx, cancel := context.WithTimeout(ctx, storeWait)
		defer cancel()
		res, err := admin.Bootstrap(bctx, client, layout, cfg, admin.Deps{Logger: log}, f.boot)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		f.Engine.DefaultAccount = res.Account
		if res.Created {
			log.Info("bootstrapped a new store", "account", res.Account, "root_client", res.RootClient)
		}
		if res.TokenFile != "" {
			log.Info("wrote the root client's init token; enroll a key with it within 8h", "file", res.TokenFile)
		}
		return nil
	}
	if f.Engine.DefaultAccount != "" {
		return nil
	}
	for first := true; ; first = false {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		acc, found, err := admin.ReadAccount(rctx, client, layout)
		cancel()
		if found {
			f.Engine.DefaultAccount = acc
			return nil
		}
		if first || err != nil {
			log.Info("waiting for the store to be bootstrapped by an admin node (or pass --account)", "error", fmt.Sprint(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// pagesFlag parses a number of 64 KiB pages into p; its range is the
// hooks' configuration's rule (policywasm.Config.Validate).
func pagesFlag(p *uint32) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a number of pages", v)
		}
		*p = uint32(n)
		return nil
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	hookmgr "github.com/wardenauthz/warden/sidecar/hooks"
	"github.com/wardenauthz/warden/sidecar/state"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// drainTimeout bounds how long in-flight requests may take after SIGTERM.
const drainTimeout = 10 * time.Second

// Roles of a node.
const (
	roleAll     = "all"
	roleAdmin   = "admin"
	roleSidecar = "sidecar"
)

// serveFlags are the flags of warden serve.
type serveFlags struct {
	engine        sidecar.Config
	audiences     listFlag
	listen        string
	diagListen    string
	baseURL       string
	dataDir       string
	role          string
	etcdEndpoints listFlag
	etcdListen    string
	boot          admin.BootstrapOptions
	bootKeyFile   string
	config        string
	hooks         policywasm.Config
}

func newServeFlags(stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &serveFlags{}
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7800", "`address` of the admin and check APIs")
	fs.StringVar(&f.diagListen, "diag-listen", "127.0.0.1:7801", "`address` of /metrics, /healthz and /readyz")
	fs.StringVar(&f.baseURL, "base-url", "", "this deployment's `URL`: the default token audience and the baseUrl of init tokens (default http:// + listen address)")
	fs.StringVar(&f.dataDir, "data-dir", "./warden-data", "`directory` of the embedded etcd's data and the bootstrap files")
	fs.StringVar(&f.role, "role", roleAll, "what this node serves: all, admin (the admin API) or sidecar (checks only, never writes)")
	fs.Var(&f.etcdEndpoints, "etcd-endpoints", "`URLs` of an external etcd cluster, comma-separated, instead of the embedded one")
	fs.StringVar(&f.etcdListen, "etcd-listen", "", "client `URL` of the embedded etcd (default: a unix socket in the data directory)")
	fs.StringVar(&f.engine.DefaultAccount, "account", "", "the `account` created on first start and the default for checks (default: random on first start)")
	fs.Var(&f.audiences, "audience", "accepted aud `values`, comma-separated (default: the base URL)")
	fs.DurationVar(&f.engine.Leeway, "leeway", 0, "clock skew allowed on exp and nbf")
	fs.BoolVar(&f.engine.AllowInsecureKeyURLs, "allow-insecure-key-urls", false, "accept http:// key URLs (loopback tests only)")
	fs.BoolVar(&f.engine.AllowTokensWithoutExp, "allow-tokens-without-exp", false, "accept tokens that carry no exp")
	fs.DurationVar(&f.engine.MaxKeyStaleness, "max-key-staleness", 24*time.Hour, "how long fetched keys outlive failed refreshes")
	fs.DurationVar(&f.engine.MinRevisionWait, "min-revision-wait", time.Second, "how long a check waits for minRevision")
	fs.StringVar(&f.engine.PermissionsClaim, "permissions-claim", sidecar.DefaultPermissionsClaim, "the inline-permissions `claim`")
	fs.StringVar(&f.boot.Issuer, "bootstrap-issuer", "", "an `issuer` to register on every start, whose subject --bootstrap-subject becomes the root client's identity")
	fs.StringVar(&f.boot.Subject, "bootstrap-subject", "", "the root client's `subject` at --bootstrap-issuer")
	fs.StringVar(&f.bootKeyFile, "bootstrap-public-key", "", "`file` with the PEM public key of --bootstrap-issuer")
	fs.StringVar(&f.boot.KeyID, "bootstrap-key-id", "", "the key id of --bootstrap-public-key (default: its RFC 7638 thumbprint)")
	fs.DurationVar(&f.hooks.Timeout, "hook-timeout", 50*time.Millisecond, "deadline of one call of a policy hook")
	fs.Func("hook-memory-pages", "memory cap of a policy hook instance, in 64 KiB `pages` (default 512)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 || n > 65536 {
			return fmt.Errorf("%q is not a number of pages from 1 to 65536", v)
		}
		f.hooks.MemoryLimitPages = uint32(n)
		return nil
	})
	fs.IntVar(&f.hooks.PoolSize, "hook-pool-size", 0, "instances of each policy hook (default GOMAXPROCS)")
	fs.StringVar(&f.hooks.CacheDir, "hook-cache-dir", "", "`directory` keeping compiled policy hooks across restarts (default: in memory)")
	fs.IntVar(&f.engine.TimingSample, "check-timing-sample", sidecar.DefaultTimingSample, "time one check in `N` for warden_check_duration_seconds (1: every check, about 45 ns each); every check is counted")
	fs.StringVar(&f.engine.DecisionLog, "decision-log", sidecar.DecisionLogOff, "log the check API's decisions to stderr as JSON: off, deny (denials only) or all")
	fs.Float64Var(&f.engine.DecisionLogSample, "decision-log-sample", 1, "the `share` of the selected decisions logged, from 0 (exclusive) to 1")
	fs.StringVar(&f.config, "config", "", "YAML `file` with the same keys as the flags")
	return fs, f
}

// complete fills defaults that depend on other flags and checks the flags,
// reporting every problem at once.
func (f *serveFlags) complete() error {
	var errs []error
	switch f.role {
	case roleAll, roleAdmin, roleSidecar:
	default:
		errs = append(errs, fmt.Errorf("--role %q must be one of all, admin, sidecar", f.role))
	}
	if f.engine.DefaultAccount != "" && !model.ValidID(model.AccountPrefix, f.engine.DefaultAccount) {
		errs = append(errs, fmt.Errorf("account %q does not match %s", f.engine.DefaultAccount, model.IDPattern(model.AccountPrefix)))
	}
	if len(f.etcdEndpoints) > 0 && f.etcdListen != "" {
		errs = append(errs, errors.New("--etcd-listen configures the embedded etcd, which --etcd-endpoints replaces"))
	}
	if f.bootKeyFile != "" {
		pem, err := os.ReadFile(f.bootKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--bootstrap-public-key: %w", err))
		}
		f.boot.PublicKeyPEM = string(pem)
	}
	if f.engine.TimingSample < 1 {
		errs = append(errs, fmt.Errorf("--check-timing-sample %d must be at least 1", f.engine.TimingSample))
	}
	switch f.engine.DecisionLog {
	case sidecar.DecisionLogOff, sidecar.DecisionLogDeny, sidecar.DecisionLogAll:
	default:
		errs = append(errs, fmt.Errorf("--decision-log %q must be one of off, deny, all", f.engine.DecisionLog))
	}
	if !(f.engine.DecisionLogSample > 0 && f.engine.DecisionLogSample <= 1) {
		errs = append(errs, fmt.Errorf("--decision-log-sample %g must be more than 0 and at most 1", f.engine.DecisionLogSample))
	}
	if f.baseURL == "" {
		f.baseURL = "http://" + f.listen
	}
	f.engine.Audiences = f.audiences
	if len(f.engine.Audiences) == 0 {
		f.engine.Audiences = []string{f.baseURL}
	}
	f.boot.Account, f.boot.DataDir = f.engine.DefaultAccount, f.dataDir
	return errors.Join(errs...)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs, f := newServeFlags(stderr)
	if err := parseFlags(fs, args, "config"); err != nil {
		return err
	}
	if err := f.complete(); err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if f.engine.AllowInsecureKeyURLs {
		log.Warn("accepting http:// key URLs: tokens can be forged by anyone on the network path to the key server; use only for loopback tests")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	client, closeStore, err := openStore(f, log)
	if err != nil {
		return err
	}
	defer closeStore()
	layout := storage.NewLayout("")
	adminCfg := admin.Config{BaseURL: f.baseURL}
	if err := resolveAccount(ctx, f, client, layout, adminCfg, log); err != nil {
		return err
	}

	// The replica and the key refresher outlive the drain: requests still
	// in flight after SIGTERM need a current state to answer.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	st := state.New()
	rep := storage.NewReplica(storage.ReplicaConfig{Client: client, Layout: layout, State: st, Logger: log})
	go rep.Run(runCtx)
	reg := newRegistry()
	eng, err := sidecar.New(st, f.engine, sidecar.Deps{Logger: log, Registerer: reg})
	if err != nil {
		return usageError{err}
	}
	go eng.Run(runCtx)

	// Policy hooks: compiled off the check path, attached as the store
	// says, checked before an admin write stores them.
	hookRT, err := policywasm.NewRuntime(runCtx, f.hooks)
	if err != nil {
		return err
	}
	defer hookRT.Close(context.Background())
	var hooks *hookmgr.Manager
	if f.role != roleAdmin {
		hooks = hookmgr.New(hookmgr.Config{Client: client, Layout: layout, Runtime: hookRT, Engine: eng, Logger: log})
		go hooks.Run(runCtx)
		defer hooks.Close(context.Background())
	}

	mux := http.NewServeMux()
	if f.role == roleAdmin {
		refuseChecks(mux)
	} else {
		eng.Register(mux)
	}
	if f.role == roleSidecar {
		admin.RegisterRefusal(mux)
	} else {
		deps := admin.Deps{Logger: log, CheckModule: hookRT.Check, Registerer: reg}
		if hooks != nil {
			deps.AwaitHooks = hooks.WaitRevision
		}
		adm, err := admin.New(eng, client, layout, adminCfg, deps)
		if err != nil {
			return usageError{err}
		}
		adm.Register(mux)
	}
	servers := []*http.Server{
		{Addr: f.listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		{Addr: f.diagListen, Handler: diagMux(reg, rep, hooks, log), ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", srv.Addr, err)
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("warden serving", "listen", f.listen, "diag_listen", f.diagListen, "role", f.role,
		"account", f.engine.DefaultAccount, "audiences", f.engine.Audiences, "version", version)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	log.Info("shutting down; draining in-flight requests", "timeout", drainTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), drainTimeout)
	defer scancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openStore connects to the external etcd cluster, or starts the embedded
// server and connects to it.
func openStore(f *serveFlags, log *slog.Logger) (*clientv3.Client, func(), error) {
	endpoints := []string(f.etcdEndpoints)
	closeEmbedded := func() {}
	if len(endpoints) == 0 {
		start := time.Now()
		emb, err := storage.StartEmbedded(storage.EmbeddedConfig{DataDir: f.dataDir, ClientURL: f.etcdListen})
		if err != nil {
			return nil, nil, err
		}
		closeEmbedded = emb.Close
		endpoints = []string{emb.Endpoint()}
		log.Info("embedded etcd started", "data_dir", f.dataDir, "endpoint", emb.Endpoint(), "took", time.Since(start).Round(time.Millisecond).String())
	}
	client, err := storage.Dial(endpoints...)
	if err != nil {
		closeEmbedded()
		return nil, nil, err
	}
	return client, func() { client.Close(); closeEmbedded() }, nil
}

// storeWait bounds how long a starting node waits for the store.
const storeWait = 60 * time.Second

// resolveAccount sets the default account: an admin node bootstraps the
// store (or reads what the first start created); a sidecar, which never
// writes, takes --account or waits for an admin node to bootstrap.
func resolveAccount(ctx context.Context, f *serveFlags, client *clientv3.Client, layout storage.Layout, cfg admin.Config, log *slog.Logger) error {
	if f.role != roleSidecar {
		bctx, cancel := context.WithTimeout(ctx, storeWait)
		defer cancel()
		res, err := admin.Bootstrap(bctx, client, layout, cfg, admin.Deps{Logger: log}, f.boot)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		f.engine.DefaultAccount = res.Account
		if res.Created {
			log.Info("bootstrapped a new store", "account", res.Account, "root_client", res.RootClient)
		}
		if res.TokenFile != "" {
			log.Info("wrote the root client's init token; enroll a key with it within 8h", "file", res.TokenFile)
		}
		return nil
	}
	if f.engine.DefaultAccount != "" {
		return nil
	}
	for first := true; ; first = false {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		acc, found, err := admin.ReadAccount(rctx, client, layout)
		cancel()
		if found {
			f.engine.DefaultAccount = acc
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

func refuseChecks(mux *http.ServeMux) {
	mux.HandleFunc("/v1/check", func(w http.ResponseWriter, _ *http.Request) {
		sidecar.WriteError(w, http.StatusNotFound, "This Warden node serves the admin API only (--role admin); send checks to a node running with --role sidecar or all")
	})
	mux.HandleFunc("/v1/check/", func(w http.ResponseWriter, _ *http.Request) {
		sidecar.WriteError(w, http.StatusNotFound, "This Warden node serves the admin API only (--role admin); send checks to a node running with --role sidecar or all")
	})
}

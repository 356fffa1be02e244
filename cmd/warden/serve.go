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
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
)

// drainTimeout bounds how long in-flight requests may take after SIGTERM.
const drainTimeout = 10 * time.Second

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        sidecar.Config
		audiences  listFlag
		listen     = fs.String("listen", "127.0.0.1:7800", "`address` of the check API")
		diagListen = fs.String("diag-listen", "127.0.0.1:7801", "`address` of /healthz and /readyz")
		baseURL    = fs.String("base-url", "", "this deployment's `URL`; the default token audience (default http:// + listen address)")
	)
	fs.StringVar(&cfg.DefaultAccount, "account", "", "the default `account` for checks (default: a new random account)")
	fs.Var(&audiences, "audience", "accepted aud `values`, comma-separated (default: the base URL)")
	fs.DurationVar(&cfg.Leeway, "leeway", 0, "clock skew allowed on exp and nbf")
	fs.BoolVar(&cfg.AllowInsecureKeyURLs, "allow-insecure-key-urls", false, "accept http:// key URLs (loopback tests only)")
	fs.BoolVar(&cfg.AllowTokensWithoutExp, "allow-tokens-without-exp", false, "accept tokens that carry no exp")
	fs.DurationVar(&cfg.MaxKeyStaleness, "max-key-staleness", 24*time.Hour, "how long fetched keys outlive failed refreshes")
	fs.DurationVar(&cfg.MinRevisionWait, "min-revision-wait", time.Second, "how long a check waits for minRevision")
	fs.StringVar(&cfg.PermissionsClaim, "permissions-claim", sidecar.DefaultPermissionsClaim, "the inline-permissions `claim`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if *baseURL == "" {
		*baseURL = "http://" + *listen
	}
	cfg.Audiences = audiences
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{*baseURL}
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = model.NewID(model.AccountPrefix)
	}
	if cfg.AllowInsecureKeyURLs {
		log.Warn("accepting http:// key URLs: tokens can be forged by anyone on the network path to the key server; use only for loopback tests")
	}

	st := state.New()
	b := &state.Batch{Revision: 1}
	b.PutAccount(cfg.DefaultAccount)
	if _, err := st.Apply(b); err != nil {
		return err
	}
	eng, err := sidecar.New(st, cfg, sidecar.Deps{Logger: log})
	if err != nil {
		return usageError{err}
	}

	mux := http.NewServeMux()
	eng.Register(mux)
	diag := http.NewServeMux()
	diag.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	diag.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go eng.Run(ctx)
	servers := []*http.Server{
		{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		{Addr: *diagListen, Handler: diag, ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", srv.Addr, err)
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("warden serving", "listen", *listen, "diag_listen", *diagListen, "account", cfg.DefaultAccount,
		"audiences", cfg.Audiences, "version", version)
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

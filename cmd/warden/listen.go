package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wardenauthz/warden/internal/connlimit"
	"github.com/wardenauthz/warden/internal/node"
	"github.com/wardenauthz/warden/internal/tlsfiles"
	"github.com/wardenauthz/warden/sidecar/doors/extauthz"
	"google.golang.org/grpc"
)

// servers are the API and diagnostics servers of `warden serve`. They are
// bound before anything else happens and serve placeholders until the node
// is assembled: /healthz says the process runs, /readyz and the API say
// what the node is waiting for.
type servers struct {
	log               *slog.Logger
	apiAddr, diagAddr string
	api, diag         *http.Server
	lns               []*connlimit.Listener
	apiH, diagH       atomic.Pointer[http.Handler]
	starting          atomic.Pointer[string]
	// proxy serves the reverse-proxy door on its own listener (the third
	// of lns), when --proxy-listen is set.
	proxyAddr string
	proxy     *http.Server
	proxyH    atomic.Pointer[http.Handler]
	// grpc is Envoy's ext_authz gRPC door, when --grpc-listen is set.
	grpcAddr string
	grpc     *grpcDoor
}

// listen binds the listeners of f, completes the flags that depend on the
// bound API address, and logs the bound addresses: with port 0 the system
// chooses them, and whoever started the process learns them from the log.
// With certs, the API and proxy listeners serve TLS, and the diagnostics
// one too with --diag-tls.
func listen(f *serveConfig, certs *tlsfiles.Reloader, log *slog.Logger) (*servers, error) {
	s := &servers{log: log}
	apiMax := connectionBudget(f.HTTP.MaxConns, log)
	addrs, caps := []string{f.Listen, f.DiagListen}, []int{apiMax, diagMaxConns}
	if f.ProxyListen != "" {
		addrs, caps = append(addrs, f.ProxyListen), append(caps, apiMax)
	}
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		s.lns = append(s.lns, connlimit.New(ln, caps[i]))
	}
	s.apiAddr, s.diagAddr = s.lns[0].Addr().String(), s.lns[1].Addr().String()
	f.bound(s.apiAddr)
	s.setStarting("opening the store")
	placeholder := http.Handler(http.HandlerFunc(s.serveStarting))
	s.apiH.Store(&placeholder)
	s.diagH.Store(&placeholder)
	s.api = f.HTTP.server(swapped(&s.apiH), s.lns[0])
	s.diag = f.HTTP.server(swapped(&s.diagH), s.lns[1])
	attrs := []any{"listen", s.apiAddr, "diag_listen", s.diagAddr, "base_url", f.BaseURL}
	if len(s.lns) > 2 {
		s.proxyAddr = s.lns[2].Addr().String()
		s.proxyH.Store(&placeholder)
		// The app's streams and uploads may run long: the proxy bounds
		// how long a request's headers and an idle connection may take.
		limits := f.HTTP
		limits.ReadTimeout, limits.WriteTimeout = 0, 0
		s.proxy = limits.server(swapped(&s.proxyH), s.lns[2])
		s.proxy.ReadHeaderTimeout = 10 * time.Second
		attrs = append(attrs, "proxy_listen", s.proxyAddr)
	}
	if certs != nil {
		attrs = append(attrs, s.useTLS(f, certs)...)
	}
	if f.GRPCListen != "" {
		g, err := newGRPCDoor(f.GRPCListen, func() string { return *s.starting.Load() })
		if err != nil {
			s.close()
			return nil, err
		}
		s.grpc, s.grpcAddr = g, g.ln.Addr().String()
		attrs = append(attrs, "grpc_listen", s.grpcAddr)
		if certs != nil {
			log.Warn("the gRPC listener serves plain text: --tls-cert covers the API, proxy and diagnostics listeners only; keep --grpc-listen on loopback or a private network", "grpc_listen", s.grpcAddr)
		}
	}
	log.Info("listening", attrs...)
	return s, nil
}

// useTLS makes the servers serve TLS with certs, and returns what to log
// of it. A handshake's failure (a client without a certificate, a scanner)
// is logged as JSON with the rest, at info level.
func (s *servers) useTLS(f *serveConfig, certs *tlsfiles.Reloader) []any {
	mutual := f.TLS.ClientCAFile != ""
	on := func(srv *http.Server, name string, clientCerts bool) {
		srv.TLSConfig = serverTLS(certs, clientCerts)
		srv.ErrorLog = slog.NewLogLogger(s.log.With("listener", name).Handler(), slog.LevelInfo)
	}
	on(s.api, "api", mutual)
	if s.proxy != nil {
		on(s.proxy, "proxy", false)
	}
	if f.TLS.Diag {
		on(s.diag, "diag", false)
	}
	attrs := []any{"tls", true, "client_certificates", mutual, "diag_tls", f.TLS.Diag}
	if leaf := certs.Leaf(); leaf != nil {
		attrs = append(attrs, "certificate", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs
}

// Connection caps: the API's default, the diagnostics listener's (a
// scraper and probes), and what is kept back for the store and the rest of
// the process out of the file descriptor limit.
const (
	defaultMaxConns = 8192
	diagMaxConns    = 64
	minFDReserve    = 256
)

// server returns an http.Server with l's timeouts, tracking connections
// for ln's cap.
func (l httpLimits) server(h http.Handler, ln *connlimit.Listener) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, l.ReadTimeout),
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		ConnState:         ln.ConnState,
	}
}

// connectionBudget returns the API listener's cap: want, or less when the
// file descriptor limit could not hold it beside the diagnostics listener
// and a reserve for the store (etcd's WAL, its database, its clients), so
// that no client load starves etcd. Go raises the soft limit to the hard
// one at start; the reserve is an eighth of the limit, and at least
// minFDReserve.
func connectionBudget(want int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return want
	}
	limit := int(lim.Cur)
	budget := limit - max(minFDReserve, limit/8) - diagMaxConns
	if want <= budget {
		return want
	}
	budget = max(budget, 16)
	log.Warn("the file descriptor limit is too low for --max-connections; the API listener holds fewer",
		"max_connections", want, "fd_limit", limit, "held_at_most", budget)
	return budget
}

// listeners names the listeners, for their metrics.
func (s *servers) listeners() map[string]*connlimit.Listener {
	m := map[string]*connlimit.Listener{"api": s.lns[0], "diag": s.lns[1]}
	if s.proxy != nil {
		m["proxy"] = s.lns[2]
	}
	return m
}

// swapped serves with the handler h points to at the time of the request.
func swapped(h *atomic.Pointer[http.Handler]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) })
}

// setStarting says what the starting node waits for.
func (s *servers) setStarting(what string) { s.starting.Store(&what) }

// serveStarting answers while the node is assembled.
func (s *servers) serveStarting(w http.ResponseWriter, r *http.Request) {
	reason := "Warden is starting: " + *s.starting.Load()
	switch r.URL.Path {
	case "/healthz":
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		httpkit.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
	default:
		w.Header().Set("Retry-After", "1")
		httpkit.WriteError(w, http.StatusServiceUnavailable, reason)
	}
}

// serve starts serving; the channel receives the first server that fails.
func (s *servers) serve() <-chan error {
	errc := make(chan error, 4)
	for i, srv := range s.all() {
		go func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(s.lns[i], "", "")
			} else {
				err = srv.Serve(s.lns[i])
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if s.grpc != nil {
		go func() {
			if err := s.grpc.srv.Serve(s.grpc.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("the gRPC listener: %w", err)
			}
		}()
	}
	return errc
}

// all are the servers, in the order of their listeners.
func (s *servers) all() []*http.Server {
	if s.proxy != nil {
		return []*http.Server{s.api, s.diag, s.proxy}
	}
	return []*http.Server{s.api, s.diag}
}

// ready swaps the placeholders for the node's handlers; proxy is nil
// without --upstream, auth on an admin node.
func (s *servers) ready(api, diag, proxy http.Handler, auth *extauthz.Server) {
	s.apiH.Store(&api)
	s.diagH.Store(&diag)
	if s.proxy != nil && proxy != nil {
		s.proxyH.Store(&proxy)
	}
	if s.grpc != nil && auth != nil {
		s.grpc.auth.Store(auth)
	}
}

// followReadiness keeps the gRPC door's health equal to the node's
// readiness until ctx ends.
func (s *servers) followReadiness(ctx context.Context, n *node.Node) {
	if s.grpc != nil {
		s.grpc.follow(ctx, n)
	}
}

// shutdown drains in-flight requests, for at most drainTimeout.
func (s *servers) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		if s.grpc != nil {
			s.grpc.stop(ctx)
		}
		close(stopped)
	}()
	var errs []error
	for _, srv := range s.all() {
		errs = append(errs, srv.Shutdown(ctx))
	}
	<-stopped
	return errors.Join(errs...)
}

// close closes what is still open.
func (s *servers) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
	if s.grpc != nil {
		s.grpc.srv.Stop()
		s.grpc.ln.Close()
	}
	if s.api != nil {
		for _, srv := range s.all() {
			srv.Close()
		}
	}
}

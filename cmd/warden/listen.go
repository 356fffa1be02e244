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
}

// listen binds the listeners of f, completes the flags that depend on the
// bound API address, and logs the bound addresses: with port 0 the system
// chooses them, and whoever started the process learns them from the log.
func listen(f *serveConfig, log *slog.Logger) (*servers, error) {
	s := &servers{log: log}
	apiMax := connectionBudget(f.HTTP.MaxConns, log)
	for i, addr := range []string{f.Listen, f.DiagListen} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		s.lns = append(s.lns, connlimit.New(ln, []int{apiMax, diagMaxConns}[i]))
	}
	s.apiAddr, s.diagAddr = s.lns[0].Addr().String(), s.lns[1].Addr().String()
	f.bound(s.apiAddr)
	s.setStarting("opening the store")
	placeholder := http.Handler(http.HandlerFunc(s.serveStarting))
	s.apiH.Store(&placeholder)
	s.diagH.Store(&placeholder)
	s.api = f.HTTP.server(swapped(&s.apiH), s.lns[0])
	s.diag = f.HTTP.server(swapped(&s.diagH), s.lns[1])
	log.Info("listening", "listen", s.apiAddr, "diag_listen", s.diagAddr, "base_url", f.BaseURL)
	return s, nil
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
	return map[string]*connlimit.Listener{"api": s.lns[0], "diag": s.lns[1]}
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
	errc := make(chan error, 2)
	for i, srv := range []*http.Server{s.api, s.diag} {
		go func() {
			if err := srv.Serve(s.lns[i]); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	return errc
}

// ready swaps the placeholders for the node's handlers.
func (s *servers) ready(api, diag http.Handler) {
	s.apiH.Store(&api)
	s.diagH.Store(&diag)
}

// shutdown drains in-flight requests, for at most drainTimeout.
func (s *servers) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return errors.Join(s.api.Shutdown(ctx), s.diag.Shutdown(ctx))
}

// close closes what is still open.
func (s *servers) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
	if s.api != nil {
		s.api.Close()
		s.diag.Close()
	}
}

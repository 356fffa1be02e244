package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/sidecar"
)

// servers are the API and diagnostics servers of `warden serve`. They are
// bound before anything else happens and serve placeholders until the node
// is assembled: /healthz says the process runs, /readyz and the API say
// what the node is waiting for.
type servers struct {
	log               *slog.Logger
	apiAddr, diagAddr string
	api, diag         *http.Server
	lns               []net.Listener
	apiH, diagH       atomic.Pointer[http.Handler]
	starting          atomic.Pointer[string]
}

// listen binds the listeners of f, completes the flags that depend on the
// bound API address, and logs the bound addresses: with port 0 the system
// chooses them, and whoever started the process learns them from the log.
func listen(f *serveFlags, log *slog.Logger) (*servers, error) {
	s := &servers{log: log}
	for _, addr := range []string{f.listen, f.diagListen} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		s.lns = append(s.lns, ln)
	}
	s.apiAddr, s.diagAddr = s.lns[0].Addr().String(), s.lns[1].Addr().String()
	f.bound(s.apiAddr)
	s.setStarting("opening the store")
	placeholder := http.Handler(http.HandlerFunc(s.serveStarting))
	s.apiH.Store(&placeholder)
	s.diagH.Store(&placeholder)
	s.api = &http.Server{Handler: swapped(&s.apiH), ReadHeaderTimeout: 10 * time.Second}
	s.diag = &http.Server{Handler: swapped(&s.diagH), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "listen", s.apiAddr, "diag_listen", s.diagAddr, "base_url", f.baseURL)
	return s, nil
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
		sidecar.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		sidecar.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
	default:
		w.Header().Set("Retry-After", "1")
		sidecar.WriteError(w, http.StatusServiceUnavailable, reason)
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

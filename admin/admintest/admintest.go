// Package admintest runs a whole Warden deployment in the calling process,
// for tests of programs that use it: an embedded etcd, a bootstrapped
// store, the replica, the engine, and the admin and check APIs on a
// loopback HTTP server.
package admintest

import (
	"context"
	"fmt"
	"github.com/wardenauthz/warden/internal/node"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/hooks"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Server is a running deployment.
type Server struct {
	// URL is the base URL of both APIs, and the tokens' audience.
	URL string
	// Account is the bootstrapped account; RootClient its root client.
	Account, RootClient string
	// RootInitToken enrolls a key for the root client, once.
	RootInitToken string
	// Store is a client of the deployment's etcd.
	Store *clientv3.Client

	// Hooks attaches the policy hooks registered through the admin API.
	Hooks *hooks.Manager

	cancel    context.CancelFunc
	node      *node.Node
	srv       *httptest.Server
	emb       *storage.Embedded
	closeOnce sync.Once
}

// Options adjust a deployment. The zero value is a deployment on loopback
// with the engine's defaults.
type Options struct {
	// Logger receives the deployment's logs; they are discarded when nil.
	Logger *slog.Logger
	// AllowInsecureKeyURLs accepts http:// key URLs, as the flag does.
	AllowInsecureKeyURLs bool
	// Wrap, when set, wraps the handler of both APIs: a test holds the
	// deployment's answers to docs/openapi.yaml with it
	// (internal/testkit/contract).
	Wrap func(http.Handler) http.Handler
}

// Start starts a deployment whose data lives under dir. Close stops it.
func Start(dir string, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	emb, err := storage.StartEmbedded(storage.EmbeddedConfig{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		return nil, err
	}
	s := &Server{emb: emb}
	if s.Store, err = storage.Dial(emb.Endpoint()); err != nil {
		emb.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.srv = httptest.NewUnstartedServer(nil)
	s.URL = "http://" + s.srv.Listener.Addr().String()
	if err := s.start(ctx, dir, o, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, dir string, o Options, log *slog.Logger) error {
	layout := storage.NewLayout("")
	cfg := admin.Config{BaseURL: s.URL}
	res, err := admin.Bootstrap(ctx, s.Store, layout, cfg, admin.Deps{Logger: log}, admin.BootstrapOptions{DataDir: dir})
	if err != nil {
		return err
	}
	s.Account, s.RootClient = res.Account, res.RootClient
	tok, err := os.ReadFile(res.TokenFile)
	if err != nil {
		return err
	}
	s.RootInitToken = strings.TrimSpace(string(tok))
	s.node, err = node.New(node.Config{
		Engine:           sidecar.Config{DefaultAccount: res.Account, Audiences: []string{s.URL}, AllowInsecureKeyURLs: o.AllowInsecureKeyURLs},
		Hooks:            policywasm.Config{PoolSize: 2},
		Admin:            cfg,
		ProgressInterval: 100 * time.Millisecond,
	}, node.Deps{Client: s.Store, Layout: layout, Logger: log})
	if err != nil {
		return err
	}
	s.Hooks = s.node.Hooks
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.node.WaitReady(wait); err != nil {
		return fmt.Errorf("admintest: %w", err)
	}
	s.srv.Config.Handler = s.node.Handler()
	if o.Wrap != nil {
		s.srv.Config.Handler = o.Wrap(s.srv.Config.Handler)
	}
	s.srv.Start()
	return nil
}

// StopStore stops the deployment's etcd, as an outage would, and leaves
// the APIs up: what needs the store answers 503.
func (s *Server) StopStore() { s.emb.Close() }

// Close stops the deployment; closing again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.srv != nil {
			s.srv.Close()
		}
		s.cancel()
		if s.node != nil {
			s.node.Close()
		}
		if s.Store != nil {
			s.Store.Close()
		}
		s.emb.Close()
	})
}

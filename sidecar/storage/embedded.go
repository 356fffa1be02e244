package storage

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EmbeddedConfig configures the embedded etcd server. The zero value of
// each field but DataDir is its default.
type EmbeddedConfig struct {
	// DataDir holds the member's data (under etcd/), its log (etcd.log) and,
	// by default, its client socket.
	DataDir string
	// ClientURL is where clients reach the server. Default: the unix socket
	// <DataDir>/etcd.sock, so that no fixed TCP port is ever bound and
	// several instances run side by side.
	ClientURL string
	// QuotaBytes is the backend quota. Default 4 GiB.
	QuotaBytes int64
	// CompactionRetention is how much history auto-compaction keeps.
	// Default 1h.
	CompactionRetention time.Duration
	// StartTimeout bounds how long the server may take to be ready.
	// Default 60s.
	StartTimeout time.Duration
}

// Embedded is a running embedded etcd server.
type Embedded struct {
	etcd      *embed.Etcd
	clientURL string
	closeOnce sync.Once
	closing   atomic.Bool
	failed    chan error
}

// StartEmbedded starts a single-member etcd server and waits until it
// serves. Its peer listener is on an ephemeral loopback port: a single
// member never talks to peers, but etcd requires one.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.DataDir == "" {
		return nil, errors.New("embedded etcd: a data directory is required")
	}
	if c.QuotaBytes == 0 {
		c.QuotaBytes = 4 << 30
	}
	if c.CompactionRetention == 0 {
		c.CompactionRetention = time.Hour
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	if c.ClientURL == "" {
		sock := filepath.Join(dir, "etcd.sock")
		if err := removeStaleSocket(sock); err != nil {
			return nil, err
		}
		c.ClientURL = "unix://" + sock
	}
	client, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: --etcd-listen %q: %w", c.ClientURL, err)
	}
	peer, _ := url.Parse("http://127.0.0.1:0")

	cfg := embed.NewConfig()
	cfg.Name = "warden"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.ListenClientUrls = []url.URL{*client}
	// etcd insists on host:port for advertised URLs, which a unix socket
	// has not; nothing dials the advertised URL of a single member.
	cfg.AdvertiseClientUrls = []url.URL{*peer}
	if client.Scheme == "http" || client.Scheme == "https" {
		cfg.AdvertiseClientUrls = []url.URL{*client}
	}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = c.CompactionRetention.String()
	cfg.QuotaBackendBytes = c.QuotaBytes
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	cfg.LogLevel = "warn"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: starting in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(c.StartTimeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not ready after %s (its log: %s)", c.StartTimeout, cfg.LogOutputs[0])
	}
	emb := &Embedded{etcd: e, clientURL: c.ClientURL, failed: make(chan error, 1)}
	go emb.watch(cfg.LogOutputs[0])
	return emb, nil
}

// watch reports on Failed a server that stops, or a listener that fails,
// other than by Close.
func (e *Embedded) watch(logFile string) {
	var err error
	select {
	case <-e.etcd.Server.StopNotify():
		err = fmt.Errorf("the server stopped (its log: %s)", logFile)
	case lerr := <-e.etcd.Err():
		err = fmt.Errorf("serving clients failed: %w (its log: %s)", lerr, logFile)
	}
	if !e.closing.Load() {
		e.failed <- fmt.Errorf("embedded etcd: %w", err)
	}
}

// Endpoint is the URL clients dial.
func (e *Embedded) Endpoint() string { return e.clientURL }

// Etcd returns the etcd server itself, for tests that make it fail.
func (e *Embedded) Etcd() *embed.Etcd { return e.etcd }

// Failed receives, once, why the server stopped when it stops on its own:
// a process whose store is gone must exit, so that its supervisor starts
// it again.
func (e *Embedded) Failed() <-chan error { return e.failed }

// Close stops the server, waiting for it to release its data. Closing
// again does nothing.
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		e.etcd.Close()
	})
}

// removeStaleSocket removes a socket file left by a process that was
// killed, which would make the listen fail, but refuses when a server still
// answers on it: the data directory is in use.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("embedded etcd: %s answers: another process is using this data directory", path)
	}
	return os.Remove(path)
}

// Dial connects to etcd the way every part of Warden does: a bounded dial,
// and the client's own logging silenced (the replica and the admin API
// report store failures themselves).
func Dial(endpoints ...string) (*clientv3.Client, error) {
	return DialTLS(nil, endpoints...)
}

// DialTLS is Dial over TLS with cfg: its root CAs verify the servers and
// its client certificate, if any, is presented to them. An http://
// endpoint is reached in plain text whatever cfg says; nil cfg is Dial.
func DialTLS(cfg *tls.Config, endpoints ...string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: cfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %v: %w", endpoints, err)
	}
	return c, nil
}

//go:build linux

package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sidecar/storage"
)

// TestServeExitsWhenEmbeddedEtcdStops: when the embedded etcd server stops
// on its own, serve returns an error (exit 1), so that a supervisor starts
// the process again rather than leave a node without a store.
func TestServeExitsWhenEmbeddedEtcdStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd")
	}
	started := make(chan *storage.Embedded, 1)
	startEmbedded = func(c storage.EmbeddedConfig) (*storage.Embedded, error) {
		emb, err := storage.StartEmbedded(c)
		if err == nil {
			started <- emb
		}
		return emb, err
	}
	t.Cleanup(func() { startEmbedded = storage.StartEmbedded })
	var log logBuffer
	done := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(t.TempDir(), "data")}, &log, &log)
	}()
	var emb *storage.Embedded
	select {
	case emb = <-started:
	case code := <-done:
		t.Fatalf("serve exited %d before its store started:\n%s", code, log.String())
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(log.String(), `"msg":"warden serving"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not serving after a minute:\n%s", log.String())
		}
	}
	emb.Etcd().Server.HardStop()
	select {
	case code := <-done:
		if code != exitError || !strings.Contains(log.String(), "the store failed; exiting") {
			t.Fatalf("exit %d after the store stopped; want %d and a log line saying why:\n%s", code, exitError, log.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve still runs a minute after its store stopped:\n%s", log.String())
	}
}

//go:build linux

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
)

// Bounds of the quiet-store test: how long nothing is written, and what
// docs/observability.md promises about staleness.
const (
	quietFor   = 30 * time.Second
	staleBound = 3 * time.Second
	// ciSlack is what a busy 2-core CI machine may add to staleBound
	// before the test sees the node stale.
	ciSlack = 12 * time.Second
)

// TestQuietStoreStaysReady: with nothing written for 30 s, /readyz stays
// 200 the whole time on every role (all, admin, sidecar), on the embedded
// etcd and on a real etcd process. On the real one, stopping etcd makes
// every node stale within the documented bound, and starting it again
// makes them ready.
func TestQuietStoreStaysReady(t *testing.T) {
	integration(t)
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		acc := model.NewID(model.AccountPrefix)
		nodes := []*wardenProc{
			startWarden(t, "warden all", filepath.Join(dir, "all"), "--role", "all"),
			startWarden(t, "warden admin", filepath.Join(dir, "admin"), "--role", "admin"),
			startWarden(t, "warden sidecar", filepath.Join(dir, "sidecar"), "--role", "sidecar", "--account", acc),
		}
		stayReady(t, nodes)
	})
	t.Run("etcd", func(t *testing.T) {
		t.Parallel()
		cluster := startEtcd(t, 1)
		dir := t.TempDir()
		acc := model.NewID(model.AccountPrefix)
		store := []string{"--etcd-endpoints", cluster.endpoints(), "--account", acc}
		nodes := []*wardenProc{
			startWarden(t, "warden all", filepath.Join(dir, "all"), append([]string{"--role", "all"}, store...)...),
			startWarden(t, "warden admin", filepath.Join(dir, "admin"), append([]string{"--role", "admin"}, store...)...),
			startWarden(t, "warden sidecar", filepath.Join(dir, "sidecar"), append([]string{"--role", "sidecar"}, store...)...),
		}
		stayReady(t, nodes)

		etcd := cluster.members[0]
		etcd.proc.kill()
		stopped := time.Now()
		for _, w := range nodes {
			eventually(t, time.Until(stopped.Add(staleBound+ciSlack)), w.name+" stale once etcd is stopped", func() (bool, string) {
				code, st, err := w.readyz()
				if err != nil {
					return false, err.Error()
				}
				return code == http.StatusServiceUnavailable && strings.Contains(st.Reason, "stale"), fmt.Sprintf("%d %+v", code, st)
			})
			t.Logf("%s stale %s after etcd stopped", w.name, time.Since(stopped).Round(100*time.Millisecond))
		}
		etcd.start(t, cluster)
		cluster.waitHealthy(t)
		for _, w := range nodes {
			w.waitReady(t, 0)
		}
	})
}

// stayReady waits until every node is ready, then requires /readyz to
// answer 200 on each, polled every 250 ms, for quietFor.
func stayReady(t *testing.T, nodes []*wardenProc) {
	t.Helper()
	for _, w := range nodes {
		w.waitReady(t, 0)
	}
	var wg sync.WaitGroup
	for _, w := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			polls := 0
			for end := time.Now().Add(quietFor); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
				code, st, err := w.readyz()
				if err != nil || code != http.StatusOK || !st.Ready {
					t.Errorf("%s after %d polls on a quiet store: %d %+v %v; want 200 ready", w.name, polls, code, st, err)
					return
				}
				polls++
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

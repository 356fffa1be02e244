// Package hooks keeps an engine's policy hooks in step with the store: it
// lists and watches the hook records, reads and verifies their modules,
// compiles them off the check path and swaps the engine's hook set whole.
package hooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config configures a Manager.
type Config struct {
	Client  *clientv3.Client
	Layout  storage.Layout
	Runtime *policywasm.Runtime
	Engine  *sidecar.Engine
	Logger  *slog.Logger
	// Retry is the pause before listing again after the store failed.
	// Default 1s.
	Retry time.Duration
	// Linger is how long a replaced hook stays open for checks that
	// started before the swap. Default 1 minute.
	Linger time.Duration
}

// Manager keeps the engine's hooks current. Run does the work.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	loaded  map[string]*loaded // by account/name
	applied int64              // the store revision whose hooks are attached
	ready   bool
	reason  string
	changed chan struct{} // closed and replaced when applied changes

	loadErrors atomic.Int64
}

// loaded is a hook as attached: its record and its module.
type loaded struct {
	acc, name string
	rec       storage.HookRecord
	hook      *policywasm.Hook // nil when broken
	broken    string
}

// New returns a manager; Run starts it.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = time.Minute
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "hooks"), loaded: map[string]*loaded{},
		reason: "the hooks are not loaded yet", changed: make(chan struct{})}
}

// Status is what the manager reports on /readyz and /metrics.
type Status struct {
	Ready bool `json:"ready"`
	// Reason says why it is not ready.
	Reason string `json:"reason,omitempty"`
	// Revision is the store revision whose hooks are attached.
	Revision int64 `json:"revision"`
	// Hooks is the number of hooks attached, Broken of those that could
	// not be loaded (they deny).
	Hooks  int `json:"hooks"`
	Broken int `json:"broken"`
	// LoadErrors counts modules that could not be read or compiled.
	LoadErrors int64 `json:"loadErrors"`
}

// Status returns the manager's status.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Ready: m.ready, Reason: m.reason, Revision: m.applied, Hooks: len(m.loaded), LoadErrors: m.loadErrors.Load()}
	for _, l := range m.loaded {
		if l.broken != "" {
			st.Broken++
		}
	}
	return st
}

// HookStats are the call counts of one attached hook.
type HookStats struct {
	Account, Name string
	policywasm.Stats
}

// Stats returns the counts of every attached hook.
func (m *Manager) Stats() []HookStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]HookStats, 0, len(m.loaded))
	for _, l := range m.loaded {
		if l.hook != nil {
			out = append(out, HookStats{Account: l.acc, Name: l.name, Stats: l.hook.Stats()})
		}
	}
	return out
}

// WaitRevision waits until the hooks of store revision rev (or a later
// one) are attached.
func (m *Manager) WaitRevision(ctx context.Context, rev int64) error {
	for {
		m.mu.Lock()
		applied, ch := m.applied, m.changed
		m.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the hooks of revision %d are not attached yet (attached: %d): %w", rev, applied, ctx.Err())
		}
	}
}

// Run lists the hooks, then watches them, until ctx ends. When the store
// fails, it keeps the hooks it has and starts over after Retry.
func (m *Manager) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := m.cycle(ctx)
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("watching the hooks failed; listing them again", "error", err.Error(), "retry", m.cfg.Retry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.Retry):
		}
	}
}

// Close detaches every hook and releases them.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.cfg.Engine.SetHooks(nil)
	for _, l := range m.loaded {
		if l.hook != nil {
			l.hook.Close(ctx)
		}
	}
	// A new map: apply may be reading the old one.
	m.loaded = map[string]*loaded{}
}

// cycle lists the hook records and applies them, then follows the watch
// until it fails.
func (m *Manager) cycle(ctx context.Context) error {
	resp, err := m.cfg.Client.Get(ctx, m.cfg.Layout.Hooks(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("listing the hooks: %w", err)
	}
	recs := map[string]stored{}
	for _, kv := range resp.Kvs {
		m.put(recs, string(kv.Key), kv.Value)
	}
	rev := resp.Header.Revision
	m.apply(ctx, recs, rev)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := m.cfg.Client.Watch(wctx, m.cfg.Layout.Hooks(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	// Hooks that could not be loaded (a store read that failed, say) are
	// tried again now and then, not only when the store changes.
	retry := time.NewTicker(5 * m.cfg.Retry)
	defer retry.Stop()
	for {
		var wr clientv3.WatchResponse
		var ok bool
		select {
		case wr, ok = <-wch:
		case <-retry.C:
			if st := m.Status(); st.Broken > 0 {
				m.apply(ctx, recs, st.Revision)
			}
			continue
		}
		if !ok {
			break
		}
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				delete(recs, string(ev.Kv.Key))
			} else {
				m.put(recs, string(ev.Kv.Key), ev.Kv.Value)
			}
		}
		if len(wr.Events) > 0 {
			m.apply(ctx, recs, wr.Header.Revision)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("the watch ended")
}

// stored is a hook record as read from the store; bad says why it did not
// decode.
type stored struct {
	rec storage.HookRecord
	bad error
}

// put decodes a record into recs. A record that does not decode is kept as
// broken, so that its hook denies rather than vanishes.
func (m *Manager) put(recs map[string]stored, key string, value []byte) {
	var rec storage.HookRecord
	if err := storage.Decode(key, value, &rec); err != nil {
		m.log.Error("a hook record does not decode; the hook denies until it is written again", "key", key, "error", err.Error())
		recs[key] = stored{bad: errors.New("its record in the store does not decode")}
		return
	}
	recs[key] = stored{rec: rec}
}

// apply makes the engine's hooks those of recs, at revision rev: unchanged
// hooks are kept, new or changed modules are read and compiled (the old
// set serves checks meanwhile), then the set is swapped whole.
func (m *Manager) apply(ctx context.Context, recs map[string]stored, rev int64) {
	m.mu.Lock()
	old := m.loaded
	m.mu.Unlock()
	next := make(map[string]*loaded, len(recs))
	var retired []*policywasm.Hook
	for key, st := range recs {
		rec := st.rec
		k, err := m.cfg.Layout.Parse(key)
		if err != nil || k.Kind != storage.KindHook {
			continue
		}
		acc, name := k.Segs[0], k.Segs[1]
		id := acc + "/" + name
		if prev, ok := old[id]; ok && st.bad == nil && prev.rec.SHA256 == rec.SHA256 && prev.broken == "" {
			next[id] = &loaded{acc: acc, name: name, rec: rec, hook: prev.hook}
			continue
		}
		l := &loaded{acc: acc, name: name, rec: rec}
		start := time.Now()
		err = st.bad
		if err == nil {
			l.hook, err = m.load(ctx, acc, name, rec, rev)
		}
		if err != nil {
			m.loadErrors.Add(1)
			l.broken = err.Error()
			m.log.Error("a hook could not be loaded; it denies every check it applies to", "account", acc, "hook", name, "error", l.broken)
		} else {
			m.log.Info("hook loaded", "account", acc, "hook", name, "sha256", rec.SHA256, "took", time.Since(start).Round(time.Millisecond))
		}
		next[id] = l
	}
	for id, prev := range old {
		if prev.hook != nil && (next[id] == nil || next[id].hook != prev.hook) {
			retired = append(retired, prev.hook)
		}
	}
	attached := make([]sidecar.AttachedHook, 0, len(next))
	for _, l := range next {
		attached = append(attached, sidecar.AttachedHook{Hook: l.hook, Name: l.name, Mode: l.rec.Mode,
			Account: l.acc, ActionPrefix: l.rec.ActionPrefix, Broken: l.broken})
	}
	// In a fixed order, so that the hooks of an account run in the order
	// of their names.
	slices.SortFunc(attached, func(a, b sidecar.AttachedHook) int {
		return strings.Compare(a.Account+"/"+a.Name, b.Account+"/"+b.Name)
	})
	if err := m.cfg.Engine.SetHooks(attached); err != nil {
		// Only a bad mode fails, which the admin API refuses; deny
		// with what is known rather than keep stale hooks.
		m.log.Error("the hooks could not be attached", "error", err.Error())
	}
	m.mu.Lock()
	m.loaded, m.applied, m.ready, m.reason = next, rev, true, ""
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	// Checks that started before the swap may still call a retired hook;
	// it is closed once they are surely done.
	for _, h := range retired {
		time.AfterFunc(m.cfg.Linger, func() { h.Close(context.Background()) })
	}
}

// load reads a hook's module at revision rev, checks it against its record
// and compiles it.
func (m *Manager) load(ctx context.Context, acc, name string, rec storage.HookRecord, rev int64) (*policywasm.Hook, error) {
	prefix := m.cfg.Layout.HookModules(acc, name) + rec.SHA256 + "/"
	resp, err := m.cfg.Client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		// The revision may be compacted already; the chunks of a
		// digest never change, so the newest read is as good.
		if resp, err = m.cfg.Client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)); err != nil {
			return nil, fmt.Errorf("reading its module: %w", err)
		}
	}
	if len(resp.Kvs) != rec.Chunks {
		return nil, fmt.Errorf("its module has %d of its %d chunks in the store", len(resp.Kvs), rec.Chunks)
	}
	var buf bytes.Buffer
	buf.Grow(rec.Size)
	for _, kv := range resp.Kvs {
		buf.Write(kv.Value)
	}
	wasm := buf.Bytes()
	sum := sha256.Sum256(wasm)
	if got := hex.EncodeToString(sum[:]); got != rec.SHA256 || len(wasm) != rec.Size {
		return nil, fmt.Errorf("its module in the store (%d bytes, sha256 %s) is not the one its record names (%d bytes, sha256 %s)", len(wasm), got, rec.Size, rec.SHA256)
	}
	return m.cfg.Runtime.Load(ctx, name, wasm)
}

// Package hooks keeps an engine's policy hooks in step with the store: it
// follows the hook records through the replica's list and watch, reads and
// verifies their modules, compiles them off the check path and swaps the
// engine's hook set whole.
package hooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/internal/watermark"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config configures a Manager.
type Config struct {
	// Client reads the hooks' modules; the records come from the replica
	// the manager follows (storage.ReplicaConfig.Followers).
	Client  *clientv3.Client
	Layout  storage.Layout
	Runtime *policywasm.Runtime
	Engine  *sidecar.Engine
	Logger  *slog.Logger
	// Registerer, when set, receives the hooks' metrics: calls, failures,
	// attached and broken hooks, instances and their memory.
	Registerer prometheus.Registerer
	// Retry is how often hooks that could not be loaded are tried again.
	// Default 5s.
	Retry time.Duration
}

// Manager keeps the engine's hooks current. Run does the work.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	loaded  map[string]*loaded // by account/name
	applied watermark.Mark     // the store revision whose hooks are attached
	ready   bool
	reason  string

	// queue holds what the replica gave and Run has not taken yet.
	qmu   sync.Mutex
	queue []update
	wake  chan struct{}

	// recs are the hook records as of the last update taken; only Run
	// touches it.
	recs map[string]stored
	// runDone is closed when Run returns; Close waits for it, so that no
	// load or swap runs after it.
	runDone chan struct{}
	running atomic.Bool

	loadErrors atomic.Int64
}

// update is one call of the replica: a reset (after a list) or an advance
// (after a watch response).
type update struct {
	reset   bool
	rev     int64
	records []storage.Record
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
		cfg.Retry = 5 * time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "hooks"), loaded: map[string]*loaded{},
		reason: "the hooks are not loaded yet", wake: make(chan struct{}, 1),
		recs: map[string]stored{}, runDone: make(chan struct{})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(collector{m})
	}
	return m
}

// Reset takes every hook record at revision rev; it implements
// storage.Follower. The work is done by Run.
func (m *Manager) Reset(rev int64, records []storage.Record) {
	m.push(update{reset: true, rev: rev, records: records})
}

// Advance takes the changes to hook records up to revision rev; it
// implements storage.Follower. The work is done by Run.
func (m *Manager) Advance(rev int64, changes []storage.Record) {
	m.push(update{rev: rev, records: changes})
}

func (m *Manager) push(u update) {
	m.qmu.Lock()
	m.queue = append(m.queue, u)
	m.qmu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
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
	// ByAccount counts the hooks attached per account.
	ByAccount map[string]int `json:"byAccount,omitempty"`
	// Instances and MemoryBytes are what the hooks' instances hold;
	// MemoryLimit is what they may hold together.
	Instances   int    `json:"instances"`
	MemoryBytes uint64 `json:"memoryBytes"`
	MemoryLimit uint64 `json:"memoryLimit"`
}

// Status returns the manager's status.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Ready: m.ready, Reason: m.reason, Revision: m.applied.Load(), Hooks: len(m.loaded), LoadErrors: m.loadErrors.Load()}
	for _, l := range m.loaded {
		if l.broken != "" {
			st.Broken++
		}
		if st.ByAccount == nil {
			st.ByAccount = map[string]int{}
		}
		st.ByAccount[l.acc]++
	}
	u := m.cfg.Runtime.Usage()
	st.Instances, st.MemoryBytes, st.MemoryLimit = u.Instances, u.MemoryBytes, u.MemoryLimit
	return st
}

// HookState says whether the hook acc/name with the module sha256 is
// attached (model.HookAttached), broken (model.HookBroken, with why) or
// not attached yet (model.HookPending).
func (m *Manager) HookState(acc, name, sha256 string) (state, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.loaded[acc+"/"+name]
	switch {
	case l == nil || l.rec.SHA256 != sha256:
		return model.HookPending, ""
	case l.broken != "":
		return model.HookBroken, l.broken
	}
	return model.HookAttached, ""
}

// AttachedStats are the call counts of one attached hook.
type AttachedStats struct {
	Account, Name string
	policywasm.Stats
}

// Stats returns the counts of every attached hook.
func (m *Manager) Stats() []AttachedStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]AttachedStats, 0, len(m.loaded))
	for _, l := range m.loaded {
		if l.hook != nil {
			out = append(out, AttachedStats{Account: l.acc, Name: l.name, Stats: l.hook.Stats()})
		}
	}
	return out
}

// WaitRevision waits until the hooks of store revision rev (or a later
// one) are attached.
func (m *Manager) WaitRevision(ctx context.Context, rev int64) error {
	if applied, err := m.applied.Wait(ctx, rev); err != nil {
		return fmt.Errorf("the hooks of revision %d are not attached yet (attached: %d): %w", rev, applied, err)
	}
	return nil
}

// Run applies what the replica gives, in order, until ctx ends: updates
// that came while a module compiled are taken together. Hooks that could
// not be loaded (a store read that failed, say) are tried again every
// Retry, not only when the store changes.
func (m *Manager) Run(ctx context.Context) {
	if !m.running.CompareAndSwap(false, true) {
		m.log.Error("the hook manager's Run was called twice; the second call does nothing")
		return
	}
	defer close(m.runDone)
	retry := time.NewTicker(m.cfg.Retry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			m.take(ctx)
		case <-retry.C:
			if st := m.Status(); st.Ready && st.Broken > 0 {
				m.apply(ctx, m.recs, st.Revision)
			}
		}
	}
}

// take applies the queued updates: the hooks are loaded again when a
// record changed, else only the revision moves on.
func (m *Manager) take(ctx context.Context) {
	m.qmu.Lock()
	queue := m.queue
	m.queue = nil
	m.qmu.Unlock()
	if len(queue) == 0 {
		return
	}
	changed := false
	for _, u := range queue {
		if u.reset {
			m.recs = map[string]stored{}
			changed = true
		}
		for _, r := range u.records {
			if r.Deleted {
				delete(m.recs, r.Key)
			} else {
				m.put(m.recs, r.Key, r.Value)
			}
			changed = true
		}
	}
	rev := queue[len(queue)-1].rev
	if changed {
		m.apply(ctx, m.recs, rev)
		return
	}
	m.applied.Advance(rev)
}

// Close detaches every hook and releases them once the checks running
// them are done, or ctx ends. Cancel Run's context first: Close waits for
// Run to return, so that nothing is attached after it.
func (m *Manager) Close(ctx context.Context) {
	if m.running.Load() {
		select {
		case <-m.runDone:
		case <-ctx.Done():
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if drained, err := m.cfg.Engine.SetHooks(nil); err == nil {
		select {
		case <-drained:
		case <-ctx.Done():
		}
	}
	for _, l := range m.loaded {
		if l.hook != nil {
			l.hook.Close(ctx)
		}
	}
	// A new map: apply may be reading the old one.
	m.loaded = map[string]*loaded{}
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
		if err == nil && rec.Mode != "" && rec.Mode != sidecar.HookRestrict && rec.Mode != sidecar.HookDecide {
			err = fmt.Errorf("its mode %q is neither %s nor %s", rec.Mode, sidecar.HookRestrict, sidecar.HookDecide)
		}
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
	drained, err := m.cfg.Engine.SetHooks(attached)
	if err != nil {
		// Bad modes are marked broken above, so the engine takes every
		// set this builds; if it did not, the old set stays.
		m.log.Error("the hooks could not be attached; the previous ones stay", "error", err.Error())
		for id, l := range next {
			if l.hook != nil && (old[id] == nil || old[id].hook != l.hook) {
				l.hook.Close(context.Background())
			}
		}
		return
	}
	m.mu.Lock()
	m.loaded, m.ready, m.reason = next, true, ""
	m.mu.Unlock()
	m.applied.Advance(rev)
	// Checks that started before the swap may still call a retired hook;
	// it is closed once none holds a set that has it.
	if len(retired) > 0 {
		go func() {
			<-drained
			for _, h := range retired {
				h.Close(context.Background())
			}
		}()
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

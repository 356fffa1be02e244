package storage

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sidecar/internal/tick"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReplicaConfig configures a Replica. The zero value of each field but
// Client and State is its default.
type ReplicaConfig struct {
	Client *clientv3.Client
	Layout Layout
	State  *state.DB
	Logger *slog.Logger
	Now    func() time.Time
	// ProgressInterval is how often the replica asks etcd to confirm that
	// the watch is current. Default 1s.
	ProgressInterval time.Duration
	// StaleAfter is how long without word from etcd makes the replica
	// stale (not ready). Default 3 × ProgressInterval.
	StaleAfter time.Duration
	// PageSize is the number of keys fetched per request while listing.
	// Default 10000: etcd counts the rest of the range on every page, so
	// small pages make a large list quadratic.
	PageSize int64
	// RetryInterval is the wait before listing or watching again after a
	// failure. Default 500ms.
	RetryInterval time.Duration
	// Followers follow kinds of record the state does not hold (hooks),
	// keyed by kind, through the replica's own list and watch.
	Followers map[string]Follower
	// Registerer, when set, receives the replica's metrics: its revision,
	// lag, readiness, relists, watch restarts and bad records.
	Registerer prometheus.Registerer
}

// A Follower follows the records of one kind that the state does not hold
// through the replica's list and watch. There is one list-then-watch per
// node, not one per kind, so every kind reaches a node in the order of the
// store's revisions, and etcd's progress notifications keep flowing: etcd
// sends none on a watch stream while any watch on it starts past its
// current revision.
//
// The replica calls a follower from its own goroutine, after the state
// applied the same revision: it must hand the work off, never block.
type Follower interface {
	// Reset gives every record of the kind at revision rev, after each
	// list; a record given before and missing now is gone.
	Reset(rev int64, records []Record)
	// Advance gives the changes to records of the kind up to revision rev,
	// in order, after each change the state applied. changes is empty when
	// only records of other kinds changed.
	Advance(rev int64, changes []Record)
}

// Record is a record as read from the store.
type Record struct {
	Key   string
	Value []byte // nil when Deleted
	// Revision is the record's mod revision, or its deletion's.
	Revision int64
	Deleted  bool
}

// Replica keeps a state.DB equal to the store's prefix: it lists the
// prefix at a revision R, loads it in one transaction, then watches from R+1
// and applies each watch response in one batch. On a compacted watch it lists
// again and applies the difference, so no change is ever skipped.
type Replica struct {
	cfg ReplicaConfig
	log *slog.Logger

	// applied maps every key the state holds to its mod revision; only the
	// Run goroutine touches it.
	applied map[string]int64

	loaded      atomic.Bool
	lastContact atomic.Int64 // unix nanoseconds of the last word from etcd
	relists     atomic.Int64
	restarts    atomic.Int64
	badRecords  atomic.Int64

	mu      sync.Mutex
	lastErr error

	lastFailLog time.Time // only the Run goroutine touches it
}

// NewReplica returns a replica; Run starts it.
func NewReplica(cfg ReplicaConfig) *Replica {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Layout.Prefix == "" {
		cfg.Layout = NewLayout("")
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 3 * cfg.ProgressInterval
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 10_000
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	r := &Replica{cfg: cfg, log: cfg.Logger.With("component", "replica"), applied: map[string]int64{}}
	// Until the first contact, the lag counts from the start.
	r.lastContact.Store(cfg.Now().UnixNano())
	if cfg.Registerer != nil {
		r.registerMetrics(cfg.Registerer)
	}
	return r
}

// Status says whether the replica is ready: its state was loaded and etcd
// confirmed the watch current within StaleAfter. Reason says why not.
type Status struct {
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"`
	Revision int64  `json:"revision"`
	// Relists counts lists after the first (compacted watches); Restarts
	// counts watches started again after an error; BadRecords counts
	// records that did not decode and were left out.
	Relists    int64 `json:"relists"`
	Restarts   int64 `json:"watchRestarts"`
	BadRecords int64 `json:"badRecords"`
	// Lag is how long ago etcd last confirmed the state current (by a
	// change or a progress notification), or since the replica started
	// when it never did. Ready requires at most StaleAfter.
	Lag time.Duration `json:"-"`
	// LagSeconds is Lag, for JSON.
	LagSeconds float64 `json:"lagSeconds"`
}

// Status returns the replica's status now.
func (r *Replica) Status() Status {
	st := Status{Revision: r.cfg.State.Revision(), Relists: r.relists.Load(), Restarts: r.restarts.Load(), BadRecords: r.badRecords.Load()}
	err := r.err()
	since := r.cfg.Now().Sub(time.Unix(0, r.lastContact.Load()))
	st.Lag, st.LagSeconds = since, since.Seconds()
	switch {
	case !r.loaded.Load():
		st.Reason = "the state is not loaded from the store yet"
		if err != nil {
			st.Reason += ": " + err.Error()
		}
	case since > r.cfg.StaleAfter:
		st.Reason = fmt.Sprintf("the state is stale: no word from etcd for %s; checks are answered from revision %d",
			since.Round(100*time.Millisecond), st.Revision)
		if err != nil {
			st.Reason += " (" + err.Error() + ")"
		}
	case err != nil:
		st.Reason = fmt.Sprintf("replication is failing; checks are answered from revision %d (%s)", st.Revision, err)
	default:
		st.Ready = true
	}
	return st
}

func (r *Replica) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *Replica) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

func (r *Replica) contact() { r.lastContact.Store(r.cfg.Now().UnixNano()) }

// Run lists and watches until ctx ends. It never gives up: failures are
// logged, reported by Status, and retried.
func (r *Replica) Run(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := r.list(ctx)
		if err != nil {
			r.fail(ctx, "listing the store", err)
			continue
		}
		for ctx.Err() == nil {
			rev, err = r.watch(ctx, rev)
			if errors.Is(err, rpctypes.ErrCompacted) {
				r.relists.Add(1)
				r.log.Warn("watch compacted; listing again", "revision", rev)
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.restarts.Add(1)
			r.fail(ctx, "watching the store", err)
		}
	}
}

func (r *Replica) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	err = fmt.Errorf("%s: %w", what, err)
	r.setErr(err)
	// While etcd is down this repeats every RetryInterval; say it once in
	// a while, not every time.
	if now := r.cfg.Now(); now.Sub(r.lastFailLog) >= failLogInterval {
		r.lastFailLog = now
		r.log.Warn("replication from the store failed; retrying", "error", err.Error(), "retry_in", r.cfg.RetryInterval.String())
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.RetryInterval):
	}
}

// failLogInterval is the least time between two logs of failures.
const failLogInterval = 10 * time.Second

// stateKinds are the kinds of record the state holds; the rest (the
// identity index, init tokens, metadata) serve the admin API only.
var stateKinds = []string{KindAccount, KindIssuer, KindAgent}

// list reads the records the state holds at one revision and applies the
// difference from the state, returning the revision. Each page of records
// is applied as it arrives, into one write transaction that publishes them
// all at once at the end, so a node never holds a whole store both decoded
// and in the state, and a reader never sees a state that is partly loaded.
func (r *Replica) list(ctx context.Context) (int64, error) {
	start := r.cfg.Now()
	seen := make(map[string]int64, len(r.applied))
	txn := r.cfg.State.Begin()
	defer txn.Abort()
	dec := newAgentDecoder(true)
	var rev int64
	for _, kind := range stateKinds {
		var err error
		// Records are decoded on the goroutine that fetches their page,
		// and applied on this one, which alone touches the transaction.
		// r.applied is only read until the list ends.
		if rev, err = listKind(ctx, r, kind, rev, func(kvs []*mvccpb.KeyValue) []listed {
			page := make([]listed, len(kvs))
			for i, kv := range kvs {
				l := &page[i]
				l.key, l.rev = string(kv.Key), kv.ModRevision
				if l.same = r.applied[l.key] == l.rev; !l.same {
					l.decoded = r.decode(dec, l.key, kv.Value)
				}
			}
			return page
		}, func(page []listed) {
			for i := range page {
				l := &page[i]
				seen[l.key] = l.rev
				if !l.same {
					r.apply(txn, &l.decoded)
				}
			}
		}); err != nil {
			return 0, err
		}
	}
	followed := make(map[string][]Record, len(r.cfg.Followers))
	for kind := range r.cfg.Followers {
		var err error
		if rev, err = listKind(ctx, r, kind, rev, func(kvs []*mvccpb.KeyValue) []*mvccpb.KeyValue { return kvs },
			func(kvs []*mvccpb.KeyValue) {
				for _, kv := range kvs {
					followed[kind] = append(followed[kind], Record{Key: string(kv.Key), Value: kv.Value, Revision: kv.ModRevision})
				}
			}); err != nil {
			return 0, err
		}
	}
	for k := range r.applied {
		if _, ok := seen[k]; !ok {
			r.del(txn, k)
		}
	}
	changes := txn.Len()
	snap, err := txn.Commit(max(rev, r.cfg.State.Revision()))
	if err != nil {
		return 0, err
	}
	r.applied = seen
	for kind, f := range r.cfg.Followers {
		f.Reset(snap.Revision, followed[kind])
	}
	r.contact()
	r.setErr(nil)
	first := !r.loaded.Swap(true)
	r.log.Info("state loaded from the store", "revision", rev, "keys", len(seen), "changes", changes,
		"first", first, "took", r.cfg.Now().Sub(start).Round(time.Millisecond).String())
	return rev, nil
}

// listed is a record as a list read it: decoded unless the state holds it
// at this mod revision already (same).
type listed struct {
	decoded
	rev  int64
	same bool
}

// listKind reads the records of one kind, page by page, at revision rev (the
// revision of the first page when rev is 0), handing each page to prepare
// on the goroutine that fetched it, then what prepare made of it to each,
// in order. The next page is fetched and prepared while each takes the one
// before, so a large store loads at the pace of the slower of the two, not
// of both.
func listKind[T any](ctx context.Context, r *Replica, kind string, rev int64, prepare func([]*mvccpb.KeyValue) T, each func(T)) (int64, error) {
	prefix := r.cfg.Layout.Prefix + kind + "/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	type page struct {
		rev     int64
		more    bool
		last    string
		records T
		err     error
	}
	fetch := func(from string, rev int64) <-chan page {
		ch := make(chan page, 1)
		go func() {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(r.cfg.PageSize)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := r.cfg.Client.Get(ctx, from, opts...)
			if err != nil {
				ch <- page{err: err}
				return
			}
			p := page{rev: resp.Header.Revision, more: resp.More && len(resp.Kvs) > 0}
			if p.more {
				p.last = string(resp.Kvs[len(resp.Kvs)-1].Key)
			}
			p.records = prepare(resp.Kvs)
			ch <- p
		}()
		return ch
	}
	// One fetch at most is in flight, and none once this returns.
	next := fetch(prefix, rev)
	for {
		p := <-next
		if p.err != nil {
			return 0, p.err
		}
		if rev == 0 {
			rev = p.rev
		}
		if p.more {
			next = fetch(p.last+"\x00", rev)
		}
		each(p.records)
		if !p.more {
			return rev, nil
		}
	}
}

// kindOf returns the kind of a key under the prefix, "" for another key.
func (r *Replica) kindOf(key string) string {
	rest, ok := strings.CutPrefix(key, r.cfg.Layout.Prefix)
	if !ok {
		return ""
	}
	kind, _, _ := strings.Cut(rest, "/")
	return kind
}

// watch applies changes after rev until the watch fails, returning the last
// revision applied and why it stopped.
func (r *Replica) watch(ctx context.Context, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The watch starts at rev, which is applied already, not at rev+1:
	// etcd sends no progress notifications to a watch that starts past its
	// current revision, and without them the replica could not tell a
	// quiet store from an unreachable one. Events at rev are skipped.
	wch := r.cfg.Client.Watch(wctx, r.cfg.Layout.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify())
	go r.askProgress(wctx)
	// A watch whose connection broke may never resume on its own, even
	// once etcd is back; one that has been silent past StaleAfter is
	// abandoned for a new one.
	check := time.NewTicker(r.cfg.ProgressInterval)
	defer check.Stop()
	started := r.cfg.Now()
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-wch:
		case <-check.C:
			now := r.cfg.Now()
			since := now.Sub(time.Unix(0, r.lastContact.Load()))
			if since > r.cfg.StaleAfter && now.Sub(started) > r.cfg.StaleAfter {
				return rev, fmt.Errorf("no word from etcd for %s", since.Round(10*time.Millisecond))
			}
			continue
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return rev, err
			}
			return rev, errors.New("the watch channel closed")
		}
		if resp.CompactRevision != 0 {
			return rev, rpctypes.ErrCompacted
		}
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if len(resp.Events) == 0 {
			// A progress notification: the watch is current.
			r.contact()
			r.setErr(nil)
			continue
		}
		b := &state.Batch{}
		dec := newAgentDecoder(false)
		// What the batch changes in r.applied, merged once it is applied:
		// a batch that fails must not look applied to a later list.
		changed := make(map[string]int64, len(resp.Events))
		var followed map[string][]Record
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision <= rev {
				continue
			}
			// Every event advances the revision, held or not, so that any
			// revision a write returned is one the state reaches.
			b.Revision = max(b.Revision, ev.Kv.ModRevision)
			k := string(ev.Kv.Key)
			kind := r.kindOf(k)
			if _, ok := r.cfg.Followers[kind]; ok {
				if followed == nil {
					followed = map[string][]Record{}
				}
				rec := Record{Key: k, Revision: ev.Kv.ModRevision, Deleted: ev.Type == mvccpb.DELETE}
				if !rec.Deleted {
					rec.Value = ev.Kv.Value
				}
				followed[kind] = append(followed[kind], rec)
				continue
			}
			if !slices.Contains(stateKinds, kind) {
				continue
			}
			if ev.Type == mvccpb.DELETE {
				r.del(b, k)
				changed[k] = 0
			} else {
				d := r.decode(dec, k, ev.Kv.Value)
				r.apply(b, &d)
				changed[k] = ev.Kv.ModRevision
			}
		}
		if b.Revision == 0 {
			continue
		}
		if _, err := r.cfg.State.Apply(b); err != nil {
			return rev, err
		}
		for k, mod := range changed {
			if mod == 0 {
				delete(r.applied, k)
			} else {
				r.applied[k] = mod
			}
		}
		rev = b.Revision
		for kind, f := range r.cfg.Followers {
			f.Advance(rev, followed[kind])
		}
		r.contact()
		r.setErr(nil)
	}
}

// askProgress asks etcd, every ProgressInterval, to confirm the watch is
// current: the answer is what keeps the replica ready while nothing
// changes, and its absence is how an unreachable etcd is noticed.
func (r *Replica) askProgress(ctx context.Context) {
	tick.Every(ctx, r.cfg.ProgressInterval, func() {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.ProgressInterval)
		_ = r.cfg.Client.RequestProgress(rctx)
		cancel()
	})
}

// changes takes what the replica reads of the store: a state.Batch for a
// watch response, a state.Txn for a list.
type changes interface {
	PutAccount(id string)
	DeleteAccount(id string)
	PutIssuer(account string, iss model.Issuer)
	DeleteIssuer(account, id string)
	PutAgent(a model.Agent)
	DeleteAgent(id string)
}

// decoded is a record of a kind the state holds, as apply applies it.
type decoded struct {
	key   string
	k     Key
	agent model.Agent // for an agent
	value []byte      // for the other kinds, which are few, decoded by apply
	err   error       // why the record is left out
}

// decode decodes a record, as far as it can off the goroutine that applies
// it (an agent record, and its key); dec decodes agents.
func (r *Replica) decode(dec *agentDecoder, key string, value []byte) decoded {
	d := decoded{key: key, value: value}
	d.k, d.err = r.cfg.Layout.Parse(key)
	if d.err != nil {
		return d
	}
	for _, seg := range d.k.Segs {
		if !indexable(seg) {
			d.err = fmt.Errorf("key %q has an empty segment or one with a NUL", key)
			return d
		}
	}
	if d.k.Kind != KindAgent {
		return d
	}
	d.value = nil
	a, err := dec.decode(key, value, d.k.Segs[0], d.k.Segs[1])
	if err == nil {
		err = checkAgent(key, &a)
	}
	d.agent, d.err = a, err
	return d
}

// checkAgent checks an agent against the state's rules.
func checkAgent(key string, a *model.Agent) error {
	if t := model.AgentTypeOf(a.ID); t == "" || t != a.Type {
		return fmt.Errorf("decoding %s: agent type %q does not fit id %q", key, a.Type, a.ID)
	}
	for i, id := range a.Identities {
		if !indexable(id.IssuerID) || !indexable(id.Subject) {
			return fmt.Errorf("decoding %s: identity %d has an empty issuerId or subject, or one with a NUL", key, i)
		}
	}
	return nil
}

// apply adds a decoded record's change to b. Records the state does not
// hold (identity index, init tokens, metadata) are skipped. A record that
// does not decode, or breaks the state's rules, is logged and left out
// rather than stopping replication, and what the state held under its key
// is removed: a broken record grants nothing.
func (r *Replica) apply(b changes, d *decoded) {
	err := d.err
	if err == nil {
		switch d.k.Kind {
		case KindAccount:
			b.PutAccount(d.k.Segs[0])
		case KindIssuer:
			var iss model.Issuer
			if err = Decode(d.key, d.value, &iss); err == nil {
				iss.ID = d.k.Segs[1]
				b.PutIssuer(d.k.Segs[0], iss)
			}
		case KindAgent:
			b.PutAgent(d.agent)
		}
	}
	if err != nil {
		r.badRecords.Add(1)
		r.log.Error("leaving out a record that does not decode", "key", d.key, "error", err.Error())
		r.del(b, d.key)
	}
}

// indexable reports whether s can be part of a memdb index key: the state's
// compound indexes are NUL-terminated strings, and empty values are
// missing ones.
func indexable(s string) bool { return s != "" && !strings.Contains(s, "\x00") }

func (r *Replica) del(b changes, key string) {
	k, err := r.cfg.Layout.Parse(key)
	if err != nil {
		return
	}
	switch k.Kind {
	case KindAccount:
		b.DeleteAccount(k.Segs[0])
	case KindIssuer:
		b.DeleteIssuer(k.Segs[0], k.Segs[1])
	case KindAgent:
		b.DeleteAgent(k.Segs[1])
	}
}

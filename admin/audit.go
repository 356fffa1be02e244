package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sdk/model"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits of the audit log.
const (
	// auditQueue bounds the entries waiting to be written: past it, an
	// entry is dropped and counted, so that a store that cannot keep up
	// never slows or stops the admin API.
	auditQueue = 10_000
	// auditBatch is the most entries one transaction writes, under etcd's
	// default limit of 128 operations.
	auditBatch = 100
	// auditFlush is how long an entry may wait for its batch.
	auditFlush = 100 * time.Millisecond
	// auditLeaseEvery is how often a new lease is taken for the entries:
	// an entry outlives the retention by at most this.
	auditLeaseEvery = time.Minute
	// auditScan bounds the entries one list request reads to fill its
	// page, so that a filter matching little answers in bounded time.
	auditScan = 5000
	// DefaultAuditRetention is how long entries are kept by default.
	DefaultAuditRetention = 7 * 24 * time.Hour
)

// auditLog writes the entries of admin API calls to the store, batched:
// a call only queues its entry. Each entry is put under a lease that ends
// Retention after it was taken, so the store forgets entries by itself.
type auditLog struct {
	kv        *clientv3.Client
	keyOf     func(acc string) string // the account's prefix
	retention time.Duration
	log       *slog.Logger
	node      string // this writer's part of the keys: entries of two nodes never collide

	queue chan auditItem
	seq   atomic.Uint64
	stop  context.CancelFunc
	done  chan struct{}

	written, dropped, failed atomic.Int64

	mu        sync.Mutex
	lease     clientv3.LeaseID
	leaseTook time.Time
}

type auditItem struct {
	key   string
	entry model.AuditEntry
}

func newAuditLog(kv *clientv3.Client, keyOf func(string) string, retention time.Duration, log *slog.Logger) *auditLog {
	ctx, stop := context.WithCancel(context.Background())
	a := &auditLog{kv: kv, keyOf: keyOf, retention: retention, log: log, node: randomHex(4),
		queue: make(chan auditItem, auditQueue), stop: stop, done: make(chan struct{})}
	go a.run(ctx)
	return a
}

// record queues an entry; it never blocks.
func (a *auditLog) record(e model.AuditEntry, at time.Time) {
	e.Timestamp = at.UTC().Format(time.RFC3339Nano)
	// The time leads the key, zero-padded, so that keys sort by time;
	// the node and a sequence number keep them apart.
	key := fmt.Sprintf("%s%020d-%s-%08x", a.keyOf(e.AccountID), at.UnixNano(), a.node, uint32(a.seq.Add(1)))
	select {
	case a.queue <- auditItem{key: key, entry: e}:
	default:
		if a.dropped.Add(1) == 1 {
			a.log.Warn("the audit log's queue is full: entries are dropped until the store keeps up", "queue", auditQueue)
		}
	}
}

// run writes what is queued, a batch at a time, until ctx ends; then it
// writes what is left.
func (a *auditLog) run(ctx context.Context) {
	defer close(a.done)
	batch := make([]auditItem, 0, auditBatch)
	timer := time.NewTimer(auditFlush)
	defer timer.Stop()
	for {
		select {
		case it := <-a.queue:
			batch = append(batch, it)
			if len(batch) < auditBatch {
				continue
			}
		case <-timer.C:
			timer.Reset(auditFlush)
		case <-ctx.Done():
			for {
				select {
				case it := <-a.queue:
					batch = append(batch, it)
					if len(batch) == auditBatch {
						a.write(batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			a.write(batch)
			return
		}
		if len(batch) > 0 {
			a.write(batch)
			batch = batch[:0]
		}
	}
}

// write puts a batch in one transaction under the current lease.
func (a *auditLog) write(batch []auditItem) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := a.currentLease(ctx)
	if err == nil {
		ops := make([]clientv3.Op, len(batch))
		for i, it := range batch {
			v, _ := json.Marshal(it.entry)
			ops[i] = clientv3.OpPut(it.key, string(v), clientv3.WithLease(lease))
		}
		_, err = a.kv.Txn(ctx).Then(ops...).Commit()
	}
	if err != nil {
		a.failed.Add(int64(len(batch)))
		a.log.Warn("audit entries could not be written", "entries", len(batch), "error", err.Error())
		return
	}
	a.written.Add(int64(len(batch)))
}

// currentLease returns the lease entries are put under, taking a new one
// every auditLeaseEvery.
func (a *auditLog) currentLease(ctx context.Context) (clientv3.LeaseID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lease != 0 && time.Since(a.leaseTook) < auditLeaseEvery {
		return a.lease, nil
	}
	resp, err := a.kv.Grant(ctx, int64((a.retention+auditLeaseEvery)/time.Second))
	if err != nil {
		return 0, fmt.Errorf("granting the audit entries' lease: %w", err)
	}
	a.lease, a.leaseTook = resp.ID, time.Now()
	return a.lease, nil
}

// close writes what is queued and stops.
func (a *auditLog) close() {
	a.stop()
	<-a.done
}

// collectors are the audit log's metrics.
func (a *auditLog) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_audit_entries_written_total", Help: "Audit entries of admin API calls written to the store."},
			func() float64 { return float64(a.written.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_audit_entries_dropped_total", Help: "Audit entries dropped because the queue was full, or lost because the store refused their write."},
			func() float64 { return float64(a.dropped.Load() + a.failed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_audit_queue_entries", Help: "Audit entries waiting to be written."},
			func() float64 { return float64(len(a.queue)) }),
	}
}

// auditCall records an admin API call that needed an action: the caller's
// verified identity (none when its token was refused), the action, the
// resource and whether it was authorized.
func (s *Server) auditCall(c *call, action string, authorized bool) {
	if s.audit == nil {
		return
	}
	id := c.caller.Identity()
	s.audit.record(model.AuditEntry{AccountID: c.acc, IssuerID: id.IssuerID, Subject: id.Subject, Action: action,
		Resource: strings.TrimPrefix(c.r.URL.EscapedPath(), "/v1"), Authorized: authorized}, s.now())
}

// auditFilter is a validated query of the audit route.
type auditFilter struct {
	from, to          time.Time
	action            string
	actionPrefix      bool
	resource          string
	issuerID, subject string
}

// auditAction is an action filter: 2 or 3 segments, the last of which
// may be '*'.
var auditAction = regexp.MustCompile(`^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+){0,1}(:([A-Za-z0-9_-]+|\*)|:\*)$`)

func parseAuditFilter(q url.Values, now time.Time) (auditFilter, error) {
	f := auditFilter{resource: q.Get("resource"), issuerID: q.Get("issuerId"), subject: q.Get("subject")}
	var err error
	if f.from, err = auditTime("from", q.Get("from"), now.Add(-15*time.Minute), now); err != nil {
		return f, err
	}
	if f.to, err = auditTime("to", q.Get("to"), now, now); err != nil {
		return f, err
	}
	if f.from.After(f.to) {
		return f, badRequest("The 'from' time '%s' is after the 'to' time '%s'", f.from.UTC().Format(time.RFC3339), f.to.UTC().Format(time.RFC3339))
	}
	if a := q.Get("action"); a != "" {
		if !auditAction.MatchString(a) {
			return f, badRequest("The 'action' filter '%s' is invalid: it must have 2 or 3 segments separated by ':', the last of which may be '*' (e.g. function:get, function:*)", truncate(a, 128))
		}
		f.action, f.actionPrefix = strings.CutSuffix(a, "*")
	}
	if f.subject != "" && f.issuerID == "" {
		return f, badRequest("The 'subject' filter '%s' can not be specified without the 'issuerId' filter", truncate(f.subject, 256))
	}
	return f, nil
}

// auditTime reads a time filter: empty is def; -Nm, -Ns, -Nh or -Nd is
// relative to now; an ISO date (RFC 3339, or a date alone, UTC); or a
// number, Unix time in milliseconds.
func auditTime(name, v string, def, now time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	bad := badRequest("The '%s' value '%s' is not a valid date: give a relative time (-15m, -2h, -7d), an ISO date (2026-12-01T10:00:00Z, 2026-12-01) or a timestamp in milliseconds", name, truncate(v, 64))
	if rel, ok := strings.CutPrefix(v, "-"); ok && len(rel) > 1 {
		n, err := strconv.Atoi(rel[:len(rel)-1])
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[rel[len(rel)-1]]
		if err != nil || n < 0 || unit == 0 || n > 1_000_000 {
			return time.Time{}, bad
		}
		return now.Add(-time.Duration(n) * unit), nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 0 || ms > 253402300799999 { // year 9999
			return time.Time{}, bad
		}
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, bad
}

func (f auditFilter) match(e *model.AuditEntry) bool {
	switch {
	case f.action != "" && !f.actionPrefix && e.Action != f.action,
		f.action != "" && f.actionPrefix && !strings.HasPrefix(e.Action, f.action),
		f.resource != "" && !strings.HasPrefix(e.Resource, f.resource),
		f.issuerID != "" && e.IssuerID != f.issuerID,
		f.subject != "" && e.Subject != f.subject:
		return false
	}
	return true
}

// listAudit lists the account's audit entries between from and to,
// newest first, a page at a time. A page reads at most auditScan entries:
// when a filter matches few, a page may hold fewer than count and still
// have a next.
func (s *Server) listAudit(c *call) (any, error) {
	q := c.r.URL.Query()
	p, err := parsePage(q, cursorAudit)
	if err != nil {
		return nil, err
	}
	f, err := parseAuditFilter(q, s.now())
	if err != nil {
		return nil, err
	}
	prefix := s.layout.Audit(c.acc)
	low := fmt.Sprintf("%s%020d", prefix, f.from.UnixNano())
	high := fmt.Sprintf("%s%020d", prefix, f.to.UnixNano()+1) // exclusive
	if p.after != "" {
		if after := prefix + p.after; after < high {
			high = after
		}
	}
	out := list{Items: []any{}}
	scanned := 0
	for high > low && scanned < auditScan {
		resp, err := s.kv.Get(c.r.Context(), low, clientv3.WithRange(high), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
			clientv3.WithLimit(int64(min(500, auditScan-scanned))))
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			scanned++
			high = string(kv.Key)
			var e model.AuditEntry
			if json.Unmarshal(kv.Value, &e) != nil || !f.match(&e) {
				continue
			}
			if len(out.Items) == p.count {
				out.Next = encodeCursor(cursorAudit, strings.TrimPrefix(string(kv.Key), prefix)+"\x00")
				return out, nil
			}
			out.Items = append(out.Items, e)
		}
		if !resp.More {
			return out, nil
		}
	}
	if high > low {
		// The scan stopped short of the range: the next page goes on.
		out.Next = encodeCursor(cursorAudit, strings.TrimPrefix(high, prefix))
	}
	return out, nil
}

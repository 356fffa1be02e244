package routes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sidecar/internal/watermark"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// StoreSource serves a route table kept in the store (--route-table): it
// follows the table's record through the replica's list and watch (it is
// a storage.Follower), and loads each version in Run, off the replica's
// goroutine. A version that fails to load, or the table's deletion, never
// replaces the table serving.
type StoreSource struct {
	holder
	key, name string
	log       *slog.Logger

	// qmu guards what the replica gave and Run has not taken yet: the
	// latest record of the table (nil: unchanged) and revision.
	qmu     sync.Mutex
	pending *storage.Record
	rev     int64
	wake    chan struct{}

	// applied is the revision Run has caught up with.
	applied watermark.Mark
}

// NewStoreSource returns the source of the table name of account acc. It
// serves nothing until the replica gives it the table (Reset) and Run
// loads it.
func NewStoreSource(layout storage.Layout, acc, name string, log *slog.Logger, reg prometheus.Registerer) *StoreSource {
	if log == nil {
		log = slog.Default()
	}
	s := &StoreSource{key: layout.RouteTable(acc, name), name: acc + "/" + name, log: log.With("component", "routes"),
		wake: make(chan struct{}, 1)}
	s.status.Source = "store " + s.name
	s.status.Error = fmt.Sprintf("the route table %s has not been read from the store yet", s.name)
	if reg != nil {
		reg.MustRegister(s.collectors()...)
	}
	return s
}

// Reset is given every route table record after each list of the replica.
func (s *StoreSource) Reset(rev int64, records []storage.Record) {
	rec := storage.Record{Key: s.key, Deleted: true, Revision: rev}
	for _, r := range records {
		if r.Key == s.key {
			rec = r
		}
	}
	s.offer(rev, &rec)
}

// Advance is given the changes to route table records up to rev.
func (s *StoreSource) Advance(rev int64, changes []storage.Record) {
	var rec *storage.Record
	for i := range changes {
		if changes[i].Key == s.key {
			rec = &changes[i]
		}
	}
	s.offer(rev, rec)
}

// offer hands a revision, and the table's record when it changed, to Run.
func (s *StoreSource) offer(rev int64, rec *storage.Record) {
	s.qmu.Lock()
	if rec != nil {
		c := *rec
		s.pending = &c
	}
	s.rev = rev
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run loads what the replica gives until ctx ends.
func (s *StoreSource) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.qmu.Lock()
		rec, rev := s.pending, s.rev
		s.pending = nil
		s.qmu.Unlock()
		if rec != nil {
			s.load(*rec)
		}
		s.applied.Advance(rev)
	}
}

// load makes a version of the table's record the table serving, or says
// why it cannot.
func (s *StoreSource) load(rec storage.Record) {
	s.mu.Lock()
	same := s.table != nil && !rec.Deleted && rec.Revision == s.status.Revision
	s.mu.Unlock()
	if same {
		return // a relist gave the version serving
	}
	var t *Table
	err := fmt.Errorf("the route table %s is not in the store", s.name)
	if !rec.Deleted {
		if t, err = Load(rec.Value); err != nil {
			err = fmt.Errorf("the route table %s at revision %d: %w", s.name, rec.Revision, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		repeated := s.status.Error == err.Error()
		s.fail(err)
		if repeated {
			return // a relist gave the same missing or broken table
		}
		if s.table != nil {
			s.log.Error("the route table could not be loaded; the one loaded before keeps serving", "table", s.name, "error", err.Error())
		} else {
			s.log.Error("the route table could not be loaded; the front doors answer 503 until it is", "table", s.name, "error", err.Error())
		}
		return
	}
	s.serve(t)
	s.status.Revision = rec.Revision
	s.log.Info("route table loaded", "table", s.name, "revision", rec.Revision, "routes", len(t.spec.Routes))
}

// WaitRevision waits until the source has caught up with the store's
// revision rev, or ctx ends: an admin write of the table then serves here.
func (s *StoreSource) WaitRevision(ctx context.Context, rev int64) error {
	if applied, err := s.applied.Wait(ctx, rev); err != nil {
		return fmt.Errorf("the route table %s has not caught up with revision %d (at %d): %w", s.name, rev, applied, err)
	}
	return nil
}

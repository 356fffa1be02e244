package routes

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sidecar/internal/tick"
)

// A Source serves a route table, from a file (FileSource) or from the
// store (StoreSource). A table that fails to load never replaces the one
// serving: the failure shows in Status, the metrics and the log.
type Source interface {
	// Table returns the table serving; nil when none has loaded.
	Table() *Table
	// Status says what the source serves and how its last load went.
	Status() Status
}

// Status is what a source says of its table, for /readyz.
type Status struct {
	// Source names where the table comes from.
	Source string `json:"source"`
	// Loaded says a table is serving; Routes counts its routes.
	Loaded bool `json:"loaded"`
	Routes int  `json:"routes"`
	// Revision is the store revision of the table serving (StoreSource).
	Revision int64 `json:"revision,omitempty"`
	// Error is why the last load failed, "" when it did not.
	Error string `json:"error,omitempty"`
	// LoadErrors counts the loads that failed.
	LoadErrors int64 `json:"loadErrors"`
}

// holder is what both sources share: the table serving and the status.
type holder struct {
	mu     sync.Mutex
	table  *Table
	status Status
}

// Table returns the table serving.
func (h *holder) Table() *Table {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.table
}

// Status says what the source serves and how its last load went.
func (h *holder) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

// serve makes t the table serving; the caller holds mu.
func (h *holder) serve(t *Table) {
	h.table = t
	h.status.Loaded, h.status.Routes, h.status.Error = true, len(t.spec.Routes), ""
}

// fail records a load that failed; the caller holds mu.
func (h *holder) fail(err error) {
	h.status.Error = err.Error()
	h.status.LoadErrors++
}

// collectors are the metrics of a source.
func (h *holder) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_route_table_routes", Help: "Routes in the route table serving."},
			func() float64 { return float64(h.Status().Routes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_route_table_load_errors_total", Help: "Loads of the route table that failed; the table loaded before kept serving."},
			func() float64 { return float64(h.Status().LoadErrors) }),
	}
}

// FileSource serves the route table of a file, and reloads it when the
// file changes.
type FileSource struct {
	holder
	path string
	log  *slog.Logger

	// modTime and size are the file's when last loaded, under mu.
	modTime time.Time
	size    int64
}

// NewFileSource loads the table of a file. A first load that fails is an
// error: a node must not start without the table it was given.
func NewFileSource(path string, log *slog.Logger, reg prometheus.Registerer) (*FileSource, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &FileSource{path: path, log: log.With("component", "routes")}
	s.status.Source = "file " + path
	if err := s.load(); err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(s.collectors()...)
	}
	return s, nil
}

// Run reloads the file every interval it changed, until ctx ends.
func (s *FileSource) Run(ctx context.Context, every time.Duration) {
	tick.Every(ctx, every, func() {
		fi, err := os.Stat(s.path)
		s.mu.Lock()
		changed := err != nil || !fi.ModTime().Equal(s.modTime) || fi.Size() != s.size
		s.mu.Unlock()
		if !changed {
			return
		}
		if err := s.load(); err != nil {
			s.log.Error("the route table could not be reloaded; the one loaded before keeps serving", "path", s.path, "error", err.Error())
			return
		}
		s.log.Info("route table reloaded", "path", s.path, "routes", s.Status().Routes)
	})
}

func (s *FileSource) load() error {
	fi, statErr := os.Stat(s.path)
	t, err := loadFile(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if statErr == nil {
		s.modTime, s.size = fi.ModTime(), fi.Size()
	}
	if err != nil {
		s.fail(err)
		return err
	}
	s.serve(t)
	return nil
}

func loadFile(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("route table: %w", err)
	}
	t, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("route table %s: %w", path, err)
	}
	return t, nil
}

// Load parses and compiles a route table.
func Load(data []byte) (*Table, error) {
	spec, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return Compile(spec)
}

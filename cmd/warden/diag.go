package main

import (
	"github.com/wardenauthz/warden/internal/httpkit"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wardenauthz/warden/internal/connlimit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar/hooks"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// readiness is the body of /readyz: the replica's status, and the hooks'
// on nodes that serve checks.
type readiness struct {
	storage.Status
	Hooks *hooks.Status `json:"hooks,omitempty"`
}

// newRegistry returns the registry every part of the process registers
// its metrics with, holding the Go runtime's, the process's and the build's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "warden_build_info", Help: "Always 1; the version label is Warden's version.", ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }))
	return reg
}

// diagMux serves /healthz (the process runs), /readyz (the state is loaded,
// the watch is current and the hooks are attached) and /metrics from reg,
// to which it adds the replica's and the hooks' metrics. hooks is nil on
// nodes that serve no checks.
func diagMux(reg *prometheus.Registry, rep *storage.Replica, hm *hooks.Manager, log *slog.Logger) *http.ServeMux {
	registerReplicaMetrics(reg, rep)
	if hm != nil {
		reg.MustRegister(hookCollector{hm})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		body := readiness{Status: rep.Status()}
		ready := body.Ready
		if hm != nil {
			hs := hm.Status()
			body.Hooks = &hs
			if !hs.Ready {
				ready = false
				if body.Reason == "" {
					body.Reason = hs.Reason
				}
			}
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		body.Ready = ready
		httpkit.WriteJSON(w, code, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	return mux
}

func registerReplicaMetrics(reg prometheus.Registerer, rep *storage.Replica) {
	gauge := func(name, help string, fn func(storage.Status) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return fn(rep.Status()) }))
	}
	counter := func(name, help string, fn func(storage.Status) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return fn(rep.Status()) }))
	}
	gauge("warden_replication_revision", "The store revision this node's state has applied.", func(s storage.Status) float64 { return float64(s.Revision) })
	gauge("warden_replication_lag_seconds", "Time since etcd last confirmed this node's state current; /readyz fails past 3s.", func(s storage.Status) float64 { return s.Lag.Seconds() })
	gauge("warden_replication_ready", "1 when the state is loaded and the watch on the store is current, else 0.", func(s storage.Status) float64 {
		if s.Ready {
			return 1
		}
		return 0
	})
	counter("warden_replication_relists_total", "Lists of the store after the first, caused by compacted watches.", func(s storage.Status) float64 { return float64(s.Relists) })
	counter("warden_replication_watch_restarts_total", "Watches on the store started again after an error.", func(s storage.Status) float64 { return float64(s.Restarts) })
	counter("warden_replication_bad_records_total", "Store records that did not decode and were left out of the state.", func(s storage.Status) float64 { return float64(s.BadRecords) })
}

// hookCollector exports the hooks' counts: calls and failures per hook,
// and how many hooks are attached or broken.
type hookCollector struct{ m *hooks.Manager }

var (
	hookCallsDesc = prometheus.NewDesc("warden_hook_calls_total",
		"Calls of a policy hook that it answered.", []string{"account", "hook"}, nil)
	hookFailuresDesc = prometheus.NewDesc("warden_hook_failures_total",
		"Calls of a policy hook that failed closed, by kind: timeout, memory, trap, garbage, busy or closed.", []string{"account", "hook", "kind"}, nil)
	hooksAttachedDesc = prometheus.NewDesc("warden_hooks_attached",
		"Policy hooks attached to this node's checks, broken ones included.", nil, nil)
	hooksBrokenDesc = prometheus.NewDesc("warden_hooks_broken",
		"Policy hooks that could not be loaded and deny every check they apply to.", nil, nil)
	hooksRevisionDesc = prometheus.NewDesc("warden_hooks_revision",
		"The store revision whose policy hooks are attached.", nil, nil)
	hookLoadErrorsDesc = prometheus.NewDesc("warden_hook_load_errors_total",
		"Policy hook modules that could not be read or compiled.", nil, nil)
	hooksByAccountDesc = prometheus.NewDesc("warden_account_hooks",
		"Policy hooks attached per account (at most 16 each).", []string{"account"}, nil)
	hookInstancesDesc = prometheus.NewDesc("warden_hook_instances",
		"Live instances of the attached policy hooks.", nil, nil)
	hookMemoryDesc = prometheus.NewDesc("warden_hook_memory_bytes",
		"Linear memory held by the policy hooks' instances.", nil, nil)
	hookMemoryLimitDesc = prometheus.NewDesc("warden_hook_memory_limit_bytes",
		"What the policy hooks' instances may hold together (--hook-memory-total-pages).", nil, nil)
)

func (hookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hookCallsDesc, hookFailuresDesc, hooksAttachedDesc, hooksBrokenDesc, hooksRevisionDesc, hookLoadErrorsDesc,
		hooksByAccountDesc, hookInstancesDesc, hookMemoryDesc, hookMemoryLimitDesc} {
		ch <- d
	}
}

func (c hookCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Status()
	ch <- prometheus.MustNewConstMetric(hooksAttachedDesc, prometheus.GaugeValue, float64(st.Hooks))
	ch <- prometheus.MustNewConstMetric(hooksBrokenDesc, prometheus.GaugeValue, float64(st.Broken))
	ch <- prometheus.MustNewConstMetric(hooksRevisionDesc, prometheus.GaugeValue, float64(st.Revision))
	ch <- prometheus.MustNewConstMetric(hookLoadErrorsDesc, prometheus.CounterValue, float64(st.LoadErrors))
	ch <- prometheus.MustNewConstMetric(hookInstancesDesc, prometheus.GaugeValue, float64(st.Instances))
	ch <- prometheus.MustNewConstMetric(hookMemoryDesc, prometheus.GaugeValue, float64(st.MemoryBytes))
	ch <- prometheus.MustNewConstMetric(hookMemoryLimitDesc, prometheus.GaugeValue, float64(st.MemoryLimit))
	for acc, n := range st.ByAccount {
		ch <- prometheus.MustNewConstMetric(hooksByAccountDesc, prometheus.GaugeValue, float64(n), acc)
	}
	for _, h := range c.m.Stats() {
		ch <- prometheus.MustNewConstMetric(hookCallsDesc, prometheus.CounterValue, float64(h.Calls), h.Account, h.Name)
		for _, kind := range policywasm.FailureKinds {
			ch <- prometheus.MustNewConstMetric(hookFailuresDesc, prometheus.CounterValue, float64(h.Failures[kind]), h.Account, h.Name, kind)
		}
	}
}

// connCollector exports the HTTP listeners' connection counts.
type connCollector map[string]*connlimit.Listener

var (
	connOpenDesc = prometheus.NewDesc("warden_http_connections",
		"Connections a listener holds now.", []string{"listener"}, nil)
	connMaxDesc = prometheus.NewDesc("warden_http_connections_max",
		"Connections a listener holds at most (--max-connections, lowered to fit the file descriptor limit).", []string{"listener"}, nil)
	connEvictedDesc = prometheus.NewDesc("warden_http_connections_evicted_total",
		"Idle connections closed to make room for a new one at the cap.", []string{"listener"}, nil)
	connRefusedDesc = prometheus.NewDesc("warden_http_connections_refused_total",
		"Connections closed at once at the cap, because every connection was in a request.", []string{"listener"}, nil)
)

func (connCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connOpenDesc, connMaxDesc, connEvictedDesc, connRefusedDesc} {
		ch <- d
	}
}

func (c connCollector) Collect(ch chan<- prometheus.Metric) {
	for name, ln := range c {
		st := ln.Stats()
		ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(st.Open), name)
		ch <- prometheus.MustNewConstMetric(connMaxDesc, prometheus.GaugeValue, float64(st.Max), name)
		ch <- prometheus.MustNewConstMetric(connEvictedDesc, prometheus.CounterValue, float64(st.Evicted), name)
		ch <- prometheus.MustNewConstMetric(connRefusedDesc, prometheus.CounterValue, float64(st.Refused), name)
	}
}

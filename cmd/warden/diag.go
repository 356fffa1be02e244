package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// diagMux serves /healthz (the process runs), /readyz (the state is loaded
// and the watch is current) and /metrics.
func diagMux(rep *storage.Replica, log *slog.Logger) *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerReplicaMetrics(reg, rep)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		sidecar.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := rep.Status()
		code := http.StatusOK
		if !st.Ready {
			code = http.StatusServiceUnavailable
		}
		sidecar.WriteJSON(w, code, st)
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
	gauge("warden_state_revision", "The store revision this node's state has applied.", func(s storage.Status) float64 { return float64(s.Revision) })
	gauge("warden_replica_ready", "1 when the state is loaded and the watch on the store is current, else 0.", func(s storage.Status) float64 {
		if s.Ready {
			return 1
		}
		return 0
	})
	counter("warden_replica_relists_total", "Lists of the store after the first, caused by compacted watches.", func(s storage.Status) float64 { return float64(s.Relists) })
	counter("warden_replica_watch_restarts_total", "Watches on the store started again after an error.", func(s storage.Status) float64 { return float64(s.Restarts) })
	counter("warden_replica_bad_records_total", "Store records that did not decode and were left out of the state.", func(s storage.Status) float64 { return float64(s.BadRecords) })
}

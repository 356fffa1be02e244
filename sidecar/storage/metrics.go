package storage

import "github.com/prometheus/client_golang/prometheus"

// registerMetrics registers the replica's metrics with reg.
func (rep *Replica) registerMetrics(reg prometheus.Registerer) {
	gauge := func(name, help string, fn func(Status) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return fn(rep.Status()) }))
	}
	counter := func(name, help string, fn func(Status) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return fn(rep.Status()) }))
	}
	gauge("warden_replication_revision", "The store revision this node's state has applied.", func(s Status) float64 { return float64(s.Revision) })
	gauge("warden_replication_lag_seconds", "Time since etcd last confirmed this node's state current; /readyz fails past 3s.", func(s Status) float64 { return s.Lag.Seconds() })
	gauge("warden_replication_ready", "1 when the state is loaded and the watch on the store is current, else 0.", func(s Status) float64 {
		if s.Ready {
			return 1
		}
		return 0
	})
	counter("warden_replication_relists_total", "Lists of the store after the first, caused by compacted watches.", func(s Status) float64 { return float64(s.Relists) })
	counter("warden_replication_watch_restarts_total", "Watches on the store started again after an error.", func(s Status) float64 { return float64(s.Restarts) })
	counter("warden_replication_bad_records_total", "Store records that did not decode and were left out of the state.", func(s Status) float64 { return float64(s.BadRecords) })
}

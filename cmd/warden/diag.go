package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/wardenauthz/warden/internal/connlimit"
)

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

package hooks

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/policywasm"
)

// collector exports the hooks' counts: calls and failures per hook,
// and how many hooks are attached or broken.
type collector struct{ m *Manager }

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

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hookCallsDesc, hookFailuresDesc, hooksAttachedDesc, hooksBrokenDesc, hooksRevisionDesc, hookLoadErrorsDesc,
		hooksByAccountDesc, hookInstancesDesc, hookMemoryDesc, hookMemoryLimitDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
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

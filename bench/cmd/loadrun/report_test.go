package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/bench/internal/load"
)

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 7.4: "7", 999.5: "1 000", 12345.6: "12 346", 1234567: "1 234 567"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestReportRatios(t *testing.T) {
	res := func(n int) load.Result {
		return load.Result{Requests: n, Elapsed: time.Second, Latencies: []time.Duration{time.Millisecond}}
	}
	md := report(config{concurrency: 4}, []scenario{
		{name: "Warden, cached token", server: "Warden", res: res(30000)},
		{name: "OPA, cached token", server: "OPA", res: res(3000)},
	})
	if !strings.Contains(md, "| throughput, cached token | 30 000/s | 3 000/s | 10.0 × |") {
		t.Fatalf("no ratio row in:\n%s", md)
	}
}

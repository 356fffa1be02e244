package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/wardenauthz/warden/sidecar/routes"
)

// BenchmarkRouteDecisionCached is a front door's decision in process: the
// route matched (ServeMux), its parameters bound into two requirements'
// templates, and both decided for a cached token. Target: ≤ 3 µs and ≤ 8
// allocs/op.
func BenchmarkRouteDecisionCached(b *testing.B) {
	spec, err := routes.Parse([]byte(`
routes:
  - name: fn
    methods: [GET]
    path: /account/{acc}/subscription/{sub}/fn/{fn}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{acc}}/subscription/{{sub}}/fn/{{fn}}/
        - action: function:list
          resource: /account/{{acc}}/subscription/{{sub}}/
`))
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := routes.Compile(spec)
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, small(), 0)
	req := routes.Request{Method: "GET", URI: fmt.Sprintf("%sfn/f1?x=1", resource(3)), Token: mint("RS256", 3)}
	ctx := context.Background()
	if o, err := tbl.Decide(ctx, e, req); err != nil || !o.Allow {
		b.Fatalf("%+v %v", o, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if o, _ := tbl.Decide(ctx, e, req); !o.Allow {
			b.Fatal(o)
		}
	}
}

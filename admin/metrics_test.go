package admin

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAdminMetrics: requests are counted by route pattern (never by path),
// method and status code, and the exposition passes the linter.
func TestAdminMetrics(t *testing.T) {
	e := newEnv(t) // registers one issuer: POST …/issuer/{id} 200
	acc := "/v1/account/" + testAcc
	e.must("GET", acc+"/user", e.rootTk, "")
	e.must("GET", acc+"/user", e.rootTk, "")
	e.do("GET", acc+"/user/usr-0000000000000001", e.rootTk, "") // 404
	e.do("GET", acc+"/user/usr-0000000000000002", e.rootTk, "") // 404, same route
	e.do("GET", acc+"/user", "", "")                            // 403
	e.do("POST", acc+"/user", e.rootTk, `{"firstName": 7}`)     // 400
	e.do("GET", "/v1/account/acc-zz/user", e.rootTk, "")        // 400, malformed account
	const want = `
# HELP warden_admin_requests_total Admin API requests answered, by route pattern, method and status code.
# TYPE warden_admin_requests_total counter
warden_admin_requests_total{code="200",method="get",route="/v1/account/{acc}/user"} 2
warden_admin_requests_total{code="400",method="get",route="/v1/account/{acc}/user"} 1
warden_admin_requests_total{code="400",method="post",route="/v1/account/{acc}/user"} 1
warden_admin_requests_total{code="403",method="get",route="/v1/account/{acc}/user"} 1
warden_admin_requests_total{code="404",method="get",route="/v1/account/{acc}/user/{id}"} 2
warden_admin_requests_total{code="200",method="post",route="/v1/account/{acc}/issuer/{id}"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "warden_admin_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.reg, "warden_admin_request_duration_seconds"); n != 4 {
		t.Fatalf("%d duration series, want 4 (route and method pairs)", n)
	}
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

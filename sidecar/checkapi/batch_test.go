package checkapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
)

// TestBatchTimeout: a batch is bounded as a whole. With a decide hook that
// runs to its deadline on every call, a batch of 100 unauthenticated
// checks stops at --batch-timeout with a 503, and does not run the rest.
func TestBatchTimeout(t *testing.T) {
	if raceEnabled {
		t.Skip("compiles a module, slow under the race detector")
	}
	t.Parallel()
	f := newFixture(t, Config{BatchTimeout: 200 * time.Millisecond})
	rt, err := policywasm.NewRuntime(context.Background(), policywasm.Config{PoolSize: 1, Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	loop := testkit.LoadHook(t, rt, "testdata/guests/loop")
	if _, err := f.eng.SetHooks([]sidecar.AttachedHook{{Hook: loop, Name: "slow", Mode: sidecar.HookDecide}}); err != nil {
		t.Fatal(err)
	}
	srv := f.server()
	body := `{"checks":[` + strings.TrimSuffix(strings.Repeat(`{"action":"function:get","resource":"/x/"},`, 100), ",") + `]}`
	status, out := post(t, srv.URL+"/v1/check/batch", "", body)
	if status != 503 || !strings.Contains(string(out), "the batch took longer than 200ms (--batch-timeout)") {
		t.Fatalf("%d %s", status, out)
	}
	st := loop.Stats()
	calls := st.Calls
	for _, n := range st.Failures {
		calls += n
	}
	if calls >= 100 {
		t.Fatalf("the hook ran %d times; the batch should have stopped early", calls)
	}
}

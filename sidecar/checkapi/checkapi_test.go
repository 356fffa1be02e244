package checkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

func post(t *testing.T, url, auth, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestCheckHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{MinRevisionWait: 50 * time.Millisecond})
	srv := f.server()
	tok := f.tok("rsa1", testkit.AliceSub)
	okBody := fmt.Sprintf(`{"action":"function:get","resource":%q}`, testkit.AliceRes)
	tests := []struct {
		name, path, auth, body string
		status                 int
		want                   string // substring of the response
	}{
		{name: "allowed", path: "/v1/check", auth: "Bearer " + tok, body: okBody, status: 200,
			want: `{"allow":true,"status":200,"reason":"allowed","agent":{"id":"` + testkit.AliceID + `","type":"user"},"grant":{"action":"function:get","resource":"` + testkit.AliceRes + `"},"revision":1}`},
		{name: "scheme is case-insensitive", path: "/v1/check", auth: "bEaReR " + tok, body: okBody, status: 200, want: `"allow":true`},
		{name: "denied is still 200", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function:put","resource":"` + testkit.AliceRes + `"}`, status: 200,
			want: `"allow":false,"status":403,"reason":"no grant allows 'function:put' on`},
		{name: "no header", path: "/v1/check", body: okBody, status: 200, want: `{"allow":false,"status":401,"reason":"missing bearer token","revision":1}`},
		{name: "basic auth", path: "/v1/check", auth: "Basic dXNlcjpwYXNz", body: okBody, status: 200, want: `"status":401`},
		{name: "malformed JSON", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":`, status: 400, want: `"statusCode":400,"message":"the request body is not valid JSON`},
		{name: "wrong type", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":1,"resource":"/"}`, status: 400, want: `\"action\" must be a string`},
		{name: "missing action", path: "/v1/check", auth: "Bearer " + tok, body: `{"resource":"/"}`, status: 400, want: `\"action\" is required`},
		{name: "empty resource", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"a","resource":""}`, status: 400, want: `\"resource\" is not allowed to be empty`},
		// The grammar: a resource with a '..' or '.' segment is refused,
		// never matched literally (a grant on testkit.AliceRes would otherwise
		// cover testkit.AliceRes + "../elsewhere/").
		{name: "resource with ..", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function:get","resource":"` + testkit.AliceRes + `../elsewhere/"}`, status: 400,
			want: `\"resource\": the resource '` + testkit.AliceRes + `../elsewhere/' has a '..' segment`},
		{name: "resource with .", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function:get","resource":"` + testkit.AliceRes + `./"}`, status: 400, want: `has a '.' segment`},
		{name: "resource with an empty segment", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function:get","resource":"` + testkit.AliceRes + `/x"}`, status: 400, want: `has an empty segment`},
		{name: "resource with white space", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function:get","resource":"/account/a b/"}`, status: 400, want: `holds white space`},
		{name: "action with an empty segment", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"function::get","resource":"/"}`, status: 400, want: `\"action\": the action 'function::get' has an empty segment`},
		{name: "batch entry with ..", path: "/v1/check/batch", auth: "Bearer " + tok, body: `{"checks":[{"action":"a","resource":"/"},{"action":"a","resource":"/x/../"}]}`, status: 400,
			want: `\"checks[1].resource\": the resource '/x/../' has a '..' segment`},
		{name: "body over 1 MiB", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"` + strings.Repeat("a", httpkit.MaxBodySize) + `"}`, status: 413, want: `"status":413`},
		{name: "minRevision reached", path: "/v1/check", auth: "Bearer " + tok, body: fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":1}`, testkit.AliceRes), status: 200, want: `"allow":true`},
		{name: "minRevision not reached", path: "/v1/check", auth: "Bearer " + tok, body: fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":7}`, testkit.AliceRes), status: 503, want: `revision 7 was not reached within 50ms`},
		{name: "negative minRevision", path: "/v1/check", auth: "Bearer " + tok, body: `{"action":"a","resource":"/","minRevision":-1}`, status: 400, want: `minRevision`},
		{name: "batch", path: "/v1/check/batch", auth: "Bearer " + tok,
			body:   fmt.Sprintf(`{"checks":[{"action":"function:get","resource":%q},{"action":"function:put","resource":%q}]}`, testkit.AliceRes, testkit.AliceRes),
			status: 200, want: `{"results":[{"allow":true,`},
		{name: "empty batch", path: "/v1/check/batch", auth: "Bearer " + tok, body: `{"checks":[]}`, status: 400, want: `\"checks\" must contain at least 1 items`},
		{name: "batch over 100", path: "/v1/check/batch", auth: "Bearer " + tok, body: `{"checks":[` + strings.TrimSuffix(strings.Repeat(`{"action":"a","resource":"/"},`, 101), ",") + `]}`, status: 400, want: `at most 100`},
		{name: "batch entry missing resource", path: "/v1/check/batch", auth: "Bearer " + tok, body: `{"checks":[{"action":"a","resource":"/"},{"action":"a"}]}`, status: 400, want: `\"checks[1].resource\" is required`},
		{name: "batch not JSON", path: "/v1/check/batch", auth: "Bearer " + tok, body: `nope`, status: 400, want: `not valid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := post(t, srv.URL+tc.path, tc.auth, tc.body)
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("got %d %s, want %d containing %s", status, body, tc.status, tc.want)
			}
			if strings.Contains(string(body), tok[len(tok)-16:]) {
				t.Fatalf("response quotes the token: %s", body)
			}
		})
	}
}

func TestCheckBatchOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	srv := f.server()
	checks := []map[string]string{
		{"action": "function:put", "resource": testkit.AliceRes},
		{"action": "function:get", "resource": testkit.AliceRes},
		{"action": "user:get", "resource": testkit.AccountRes + "user"},
		{"action": "user:get", "resource": "/account/" + testkit.OtherAcc + "/user"},
	}
	body, _ := json.Marshal(map[string]any{"checks": checks})
	status, raw := post(t, srv.URL+"/v1/check/batch", "Bearer "+f.tok("ec256", testkit.AliceSub), string(body))
	if status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	var out struct{ Results []model.Decision }
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	want := []int{403, 200, 200, 401}
	if len(out.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(out.Results), len(want))
	}
	for i, d := range out.Results {
		if d.Status != want[i] {
			t.Errorf("result %d: %+v, want status %d", i, d, want[i])
		}
	}
}

// TestMinRevisionWaits: a check asking for a revision not yet applied waits
// for it, and answers from it.
func TestMinRevisionWaits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{MinRevisionWait: 30 * time.Second})
	srv := f.server()
	tok := f.tok("rsa1", "bob")
	done := make(chan model.Decision)
	go func() {
		_, raw := post(t, srv.URL+"/v1/check", "Bearer "+tok, fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":2}`, testkit.AliceRes))
		var d model.Decision
		_ = json.Unmarshal(raw, &d)
		done <- d
	}()
	f.Apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: testkit.BobID, Type: model.AgentClient, Account: testkit.Acc,
			Identities: []model.Identity{{IssuerID: testkit.Issuer, Subject: "bob"}},
			Grants:     []model.Permission{{Action: "function:*", Resource: "/"}}})
	})
	if d := <-done; !d.Allow || d.Revision != 2 {
		t.Fatalf("after waiting: %+v", d)
	}
}

// TestCheckWaitsForHooks: a check's minRevision waits for the policy hooks
// of that revision too; when they are late, the 503 says so.
func TestCheckWaitsForHooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{MinRevisionWait: 50 * time.Millisecond})
	attached := make(chan struct{})
	f.eng.AwaitHooksWith(func(ctx context.Context, rev int64) error {
		select {
		case <-attached:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	srv := f.server()
	body := fmt.Sprintf(`{"action":"function:get","resource":%q,"minRevision":1}`, testkit.AliceRes)
	status, out := post(t, srv.URL+"/v1/check", "Bearer "+f.tok("rsa1", testkit.AliceSub), body)
	if status != 503 || !strings.Contains(string(out), "the policy hooks of revision 1 were not attached within 50ms") {
		t.Fatalf("with the hooks late: %d %s", status, out)
	}
	close(attached)
	if status, out := post(t, srv.URL+"/v1/check", "Bearer "+f.tok("rsa1", testkit.AliceSub), body); status != 200 || !strings.Contains(string(out), `"allow":true`) {
		t.Fatalf("with the hooks attached: %d %s", status, out)
	}
}

// BenchmarkServeCheck is the check API's handler on a cached token, as a
// server runs it: the body read and decoded, the check decided, the answer
// encoded and written, with the request and the response writer reused,
// as net/http reuses its own per connection. Target: at most 12 allocs/op.
func BenchmarkServeCheck(b *testing.B) {
	f := newFixture(b, Config{})
	mux := f.mux()
	body := []byte(`{"action":"function:get","resource":"` + testkit.AliceRes + `"}`)
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/v1/check", nil)
	req.Body = io.NopCloser(rd)
	req.Header["Authorization"] = []string{"Bearer " + f.tok("rsa1", testkit.AliceSub)}
	w := &reusedWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		w.reset()
		mux.ServeHTTP(w, req)
		if w.code != http.StatusOK || !bytes.Contains(w.buf, []byte(`"allow":true`)) {
			b.Fatal(w.code, string(w.buf))
		}
	}
}

// BenchmarkServeCheckHTTPTest is BenchmarkServeCheck with the request and
// the recorder built anew each time by httptest, whose own allocations
// (19 with a handler that does nothing) are most of the figure.
func BenchmarkServeCheckHTTPTest(b *testing.B) {
	f := newFixture(b, Config{})
	mux := f.mux()
	auth := "Bearer " + f.tok("rsa1", testkit.AliceSub)
	body := `{"action":"function:get","resource":"` + testkit.AliceRes + `"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/check", strings.NewReader(body))
		req.Header["Authorization"] = []string{auth}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"allow":true`) {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// reusedWriter is a response writer kept across requests, as a server
// keeps its connection's.
type reusedWriter struct {
	h    http.Header
	code int
	buf  []byte
}

func (w *reusedWriter) Header() http.Header  { return w.h }
func (w *reusedWriter) WriteHeader(code int) { w.code = code }
func (w *reusedWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *reusedWriter) reset() {
	clear(w.h)
	w.code, w.buf = 0, w.buf[:0]
}

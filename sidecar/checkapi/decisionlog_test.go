package checkapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/internal/testkit"
	"net/http"
	"strings"
	"testing"
)

// syncBuffer is the decision log's output.
type syncBuffer struct{ testkit.Buffer }

// records returns the log's decision records.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		if rec["msg"] == "decision" {
			out = append(out, rec)
		}
	}
	return out
}

// logFixture is the fixture with its decision log written to a buffer.
func logFixture(t *testing.T, cfg Config) (*fixture, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	return newFixtureLogging(t, cfg, buf), buf
}

func checkWithID(t *testing.T, url, token, requestID, body string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get(CallIDHeader), resp.StatusCode
}

// TestDecisionLog: the filter, the record's fields, call ids, batches, and
// that no token or part of one is ever written.
func TestDecisionLog(t *testing.T) {
	t.Parallel()
	body := func(action string) string {
		return fmt.Sprintf(`{"action":%q,"resource":%q}`, action, testkit.AliceRes)
	}
	t.Run("deny only", func(t *testing.T) {
		f, buf := logFixture(t, Config{DecisionLog: DecisionLogDeny})
		srv := f.server()
		tok := f.tok("rsa1", testkit.AliceSub)
		id1, _ := checkWithID(t, srv.URL+"/v1/check", tok, "req-42", body("function:get"))
		id2, _ := checkWithID(t, srv.URL+"/v1/check", tok, "", body("function:put"))
		id3, _ := checkWithID(t, srv.URL+"/v1/check", tok, "bad id with spaces", body("function:put"))
		if id1 != "req-42" || len(id2) != 16 || len(id3) != 16 || id2 == id3 {
			t.Fatalf("call ids %q %q %q: want the caller's usable id, else a fresh 16-hex one", id1, id2, id3)
		}
		recs := buf.records(t)
		if len(recs) != 2 {
			t.Fatalf("%d records, want the 2 denials:\n%s", len(recs), buf)
		}
		r := recs[0]
		want := map[string]any{"call_id": id2, "allow": false, "status": 403.0, "reason_class": "no_grant", "action": "function:put",
			"resource": testkit.AliceRes, "account": testkit.Acc, "agent_id": testkit.AliceID, "agent_type": "user", "component": "decision", "revision": 1.0}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("%s = %v, want %v (record %v)", k, r[k], v, r)
			}
		}
		if !strings.HasPrefix(r["reason"].(string), "no grant allows") || r["source"] == nil || r["elapsed_us"] == nil {
			t.Errorf("record %v lacks its reason, source or elapsed time", r)
		}
		if recs[1]["call_id"] != id3 {
			t.Errorf("the second record's call id %v, want %v", recs[1]["call_id"], id3)
		}
	})
	t.Run("all, with a batch", func(t *testing.T) {
		f, buf := logFixture(t, Config{DecisionLog: DecisionLogAll})
		srv := f.server()
		tok := f.tok("rsa1", testkit.AliceSub)
		id, _ := checkWithID(t, srv.URL+"/v1/check/batch", tok, "", fmt.Sprintf(`{"checks":[%s,%s]}`, body("function:get"), body("function:put")))
		recs := buf.records(t)
		if len(recs) != 2 || recs[0]["batch_index"] != 0.0 || recs[1]["batch_index"] != 1.0 || recs[0]["call_id"] != id || recs[1]["call_id"] != id {
			t.Fatalf("batch records %v; want two, indexed, with the call's id %s", recs, id)
		}
		if recs[0]["allow"] != true || recs[0]["grant_action"] != "function:get" || recs[0]["reason_class"] != "granted" {
			t.Fatalf("allowed record %v", recs[0])
		}
	})
	t.Run("off", func(t *testing.T) {
		f, buf := logFixture(t, Config{})
		srv := f.server()
		if id, _ := checkWithID(t, srv.URL+"/v1/check", "", "", body("function:get")); id != "" {
			t.Fatalf("a call id %q with the log off", id)
		}
		if recs := buf.records(t); len(recs) != 0 {
			t.Fatalf("records with the log off: %v", recs)
		}
	})
	t.Run("sampled", func(t *testing.T) {
		f, buf := logFixture(t, Config{DecisionLog: DecisionLogAll, DecisionLogSample: 0.25})
		srv := f.server()
		const n = 400
		for range n {
			checkWithID(t, srv.URL+"/v1/check", "", "", body("function:get"))
		}
		// binomial(400, 1/4): mean 100, sd about 9.
		if got := len(buf.records(t)); got < 50 || got > 150 {
			t.Fatalf("%d of %d decisions logged at a sample of 0.25", got, n)
		}
	})
	t.Run("no token material", func(t *testing.T) {
		f, buf := logFixture(t, Config{DecisionLog: DecisionLogAll})
		srv := f.server()
		good := f.tok("rsa1", testkit.AliceSub)
		forged := good[:len(good)-8] + "AAAAAAAA"
		other := f.tok("rsa1", "nobody")
		for _, tk := range []string{good, forged, other, "garbage.token.here"} {
			checkWithID(t, srv.URL+"/v1/check", tk, "", body("function:get"))
			checkWithID(t, srv.URL+"/v1/check/batch", tk, "", `{"checks":[`+body("function:put")+`]}`)
		}
		if len(buf.records(t)) != 8 {
			t.Fatalf("want 8 records:\n%s", buf)
		}
		log := buf.String()
		for _, tk := range []string{good, forged, other} {
			for i, part := range strings.Split(tk, ".") {
				if strings.Contains(log, part) {
					t.Fatalf("the log holds part %d of a token:\n%s", i, log)
				}
			}
		}
		for _, secret := range []string{"BEGIN", "PRIVATE", "garbage.token.here"} {
			if strings.Contains(log, secret) {
				t.Fatalf("the log holds %q:\n%s", secret, log)
			}
		}
	})
}

func TestDecisionLogConfig(t *testing.T) {
	eng := newFixture(t, Config{}).eng
	for _, cfg := range []Config{{DecisionLog: "denials"}, {DecisionLogSample: 1.5}, {DecisionLogSample: -0.1}, {BatchTimeout: -1}, {MinRevisionWait: -1}} {
		if _, err := New(eng, cfg, nil); err == nil {
			t.Errorf("%+v was accepted", cfg)
		}
	}
}

// TestDecisionLogSourceBehindProxy: the logged source is the client's
// address from X-Forwarded-For only when the request comes from a trusted
// proxy; otherwise the connection's, whatever the header says.
func TestDecisionLogSourceBehindProxy(t *testing.T) {
	t.Parallel()
	loopback, err := httpkit.ParseProxies([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		proxies httpkit.Proxies
		want    string
	}{
		{"no trusted proxies", nil, "127.0.0.1"},
		{"loopback trusted", loopback, "203.0.113.9"},
	} {
		f, buf := logFixture(t, Config{DecisionLog: DecisionLogAll, Proxies: tc.proxies})
		srv := f.server()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/check", strings.NewReader(`{"action":"function:get","resource":"`+testkit.AliceRes+`"}`))
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		recs := buf.records(t)
		if len(recs) != 1 || recs[0]["source"] != tc.want {
			t.Errorf("%s: %v", tc.name, recs)
		}
	}
}

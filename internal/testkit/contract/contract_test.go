package contract

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// reporter keeps what a Checker reports.
type reporter struct {
	mu       sync.Mutex
	failures []string
}

func (*reporter) Helper() {}

func (r *reporter) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

const (
	acc  = "/v1/account/acc-0123456789abcdef"
	user = "usr-00000000000000a1"
)

// answer is a handler that answers status with headers and body.
func answerWith(status int, body string, headers ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

const errBody = `{"status":400,"statusCode":400,"message":"bad"}`

// TestContractBites: answers the document does not allow are reported,
// each for its reason; answers it allows, deliberately malformed requests
// included, are not.
func TestContractBites(t *testing.T) {
	decision := `{"allow":true,"status":200,"reason":"allowed","revision":3}`
	doorHeaders := []string{"X-Warden-Agent-Id", "", "X-Warden-Agent-Type", "", "X-Warden-Subject", ""}
	for _, tc := range []struct {
		name, method, target, body string
		listener                   Listener
		handler                    http.Handler
		fail                       string // in the failure; "" for none
	}{
		{"a documented answer", "GET", "/v1/health", "", API, answerWith(200, ""), ""},
		{"an undocumented status", "GET", "/v1/health", "", API, answerWith(418, `{"status":418,"statusCode":418,"message":"x"}`), "does not document status 418"},
		{"a body where there is none", "GET", "/v1/health", "", API, answerWith(200, `{}`), "has no body"},
		{"no body where there is one", "POST", "/v1/check", `{"action":"a:b","resource":"/"}`, API, answerWith(200, ""), "has a body, but the answer has none"},
		{"a record with an unknown field", "GET", acc + "/user/" + user, "", API, answerWith(200, `{"id":"`+user+`","nickname":"x"}`), "nickname"},
		{"a record of the wrong kind", "GET", acc + "/user/" + user, "", API, answerWith(200, `{"id":"clt-00000000000000b0"}`), "doesn't match schema"},
		{"a decision without its revision", "POST", "/v1/check", `{"action":"a:b","resource":"/"}`, API, answerWith(200, `{"allow":true,"status":200,"reason":"allowed"}`), "revision"},
		{"a decision", "POST", "/v1/check", `{"action":"a:b","resource":"/"}`, API, answerWith(200, decision), ""},
		{"an error body of another shape", "POST", "/v1/check", `{`, API, answerWith(400, `{"error":"bad"}`), "doesn't match schema"},
		{"an error body as plain text", "POST", "/v1/check", `{`, API, answerWith(400, "bad", "Content-Type", "text/plain"), "text/plain"},
		{"a malformed request refused as documented", "POST", "/v1/check", `{"action":""}`, API, answerWith(400, errBody), ""},
		{"a malformed request that succeeds", "POST", "/v1/check", `{"action":""}`, API, answerWith(200, decision), "the request does not match the document, yet it succeeded"},
		{"an unknown field in an admin body that succeeds", "POST", acc + "/user", `{"nickname":"x"}`, API,
			answerWith(200, `{"id":"`+user+`"}`, "Warden-Revision", "7"), "the request does not match"},
		{"a write without its revision", "DELETE", acc + "/user/" + user, "", API, answerWith(204, ""), `"Warden-Revision" missing`},
		{"a write with its revision", "DELETE", acc + "/user/" + user, "", API, answerWith(204, "", "Warden-Revision", "7"), ""},
		{"a route the document lacks, served", "GET", "/v1/secret", "", API, answerWith(200, `{}`), "has no operation GET /v1/secret"},
		{"a route the document lacks, refused by net/http", "GET", "/v1/secret", "", API, http.NotFoundHandler(), ""},
		{"a method the document lacks, refused by net/http", "PUT", "/v1/check", "", API, answerWith(405, "Method Not Allowed\n", "Content-Type", "text/plain"), ""},
		{"a method the document lacks, served", "PUT", "/v1/check", "", API, answerWith(200, decision), "has no operation PUT /v1/check"},
		{"the other listener's route", "GET", "/healthz", "", API, answerWith(200, `{"status":"ok"}`), "for this listener"},
		{"the diagnostics listener's route", "GET", "/healthz", "", Diagnostics, answerWith(200, `{"status":"ok"}`), ""},
		{"liveness saying something else", "GET", "/healthz", "", Diagnostics, answerWith(200, `{"status":"fine"}`), "doesn't match schema"},
		{"the API's route on the diagnostics listener", "GET", "/v1/health", "", Diagnostics, answerWith(200, ""), "for this listener"},
		{"a door's path of many segments", "GET", "/v1/authz/envoy/a/b/../c?x=1", "", API, answerWith(200, "", doorHeaders...), ""},
		{"a door's answer without identity headers", "GET", "/v1/authz/envoy/a/b", "", API, answerWith(200, ""), `"X-Warden-Agent-Id" missing`},
		{"a door's 401 without a challenge", "POST", "/v1/authz/forward", "", API,
			answerWith(401, `{"status":401,"statusCode":401,"message":"no token"}`, doorHeaders...), `"WWW-Authenticate" missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &reporter{}
			c := New(rep, tc.listener)
			srv := httptest.NewServer(c.Handler(tc.handler))
			defer srv.Close()
			req, err := http.NewRequest(tc.method, srv.URL+tc.target, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if c.Checked() != 1 {
				t.Fatalf("checked %d requests", c.Checked())
			}
			for _, f := range rep.failures {
				t.Log(f)
			}
			switch {
			case tc.fail == "" && len(rep.failures) > 0:
				t.Fatalf("reported:\n%s", strings.Join(rep.failures, "\n"))
			case tc.fail != "" && len(rep.failures) != 1:
				t.Fatalf("reported %d failures, want one with %q:\n%s", len(rep.failures), tc.fail, strings.Join(rep.failures, "\n"))
			case tc.fail != "" && !strings.Contains(rep.failures[0], tc.fail):
				t.Fatalf("reported %s\nwant %q in it", rep.failures[0], tc.fail)
			}
		})
	}
}

// TestHandlerPassesThrough: the handler gets the whole request body and
// the client the whole answer, streamed, whatever the Checker keeps.
func TestHandlerPassesThrough(t *testing.T) {
	rep := &reporter{}
	body := strings.Repeat("x", maxBody+10)
	h := New(rep, API).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(413)
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, `{"status":413,"statusCode":413,"message":"%d"}`, len(b))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/check", strings.NewReader(body)))
	if want := fmt.Sprintf(`"message":"%d"`, len(body)); rec.Code != 413 || !strings.Contains(rec.Body.String(), want) || !rec.Flushed {
		t.Fatalf("%d %s (flushed %v)", rec.Code, rec.Body, rec.Flushed)
	}
	if len(rep.failures) > 0 {
		t.Fatalf("reported:\n%s", strings.Join(rep.failures, "\n"))
	}
}

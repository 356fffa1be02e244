package checkapi

import (
	"encoding/json"
	"github.com/wardenauthz/warden/internal/testkit"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCheckBody feeds arbitrary JSON bodies to both check routes: the answer
// is a decision (200), a clear 400 or 413, never a 5xx or a panic.
func FuzzCheckBody(f *testing.F) {
	fx := newFixture(f, Config{MinRevisionWait: 1})
	mux := fx.mux()
	tok := fx.tok("rsa1", testkit.AliceSub)
	for _, s := range []string{
		`{"action":"function:get","resource":"` + testkit.AliceRes + `"}`,
		`{"action":"a","resource":"/","minRevision":1}`,
		`{"checks":[{"action":"a","resource":"/"}]}`,
		`{"checks":null}`, `{"action":null}`, `[]`, `null`, `"x"`, `{"minRevision":1e400}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		path := "/v1/check"
		if batch {
			path = "/v1/check/batch"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413, 503:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !strings.HasPrefix(rec.Body.String(), "{") {
			t.Fatalf("non-JSON answer %q", rec.Body)
		}
	})
}

// FuzzParseCheck: a body the fast reader takes is read exactly as
// encoding/json reads it; one it leaves is left whole to encoding/json.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{
		`{"action":"function:get","resource":"/account/acc-1/"}`,
		` { "resource" : "/x/" , "action":"a:b", "minRevision": 42 } `,
		`{"action":"a","action":"b"}`, `{"Action":"a"}`, `{"action":"\u0061"}`, `{"action":null}`,
		`{"minRevision":-0}`, `{"minRevision":01}`, `{"minRevision":1.5}`, `{"minRevision":9223372036854775808}`,
		`{}`, `{} x`, `[]`, `{"action":"é"}`, "{\"action\":\"\xff\"}", `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := parseCheck(body)
		if !ok {
			return
		}
		var req checkRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("parseCheck took %q, which encoding/json refuses: %v", body, err)
		}
		if want := req.check(); got != want {
			t.Fatalf("%q: parseCheck %+v, encoding/json %+v", body, got, want)
		}
	})
}

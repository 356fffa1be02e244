package sidecar

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCheckToken feeds arbitrary bearer tokens to the check path: it never
// panics, never allows a token that was not minted here, and never quotes
// more than a short piece of the token in its reason.
func FuzzCheckToken(f *testing.F) {
	fx := newFixture(f, Config{})
	valid := fx.tok("rsa1", aliceSub)
	validEd := fx.tok("ed", aliceSub)
	f.Add(valid)
	f.Add(validEd)
	f.Add(withHeader(f, valid, `{"alg":"none","kid":"rsa1"}`))
	f.Add(withHeader(f, valid, `{"alg":"HS256","kid":"rsa1"}`))
	f.Add(withHeader(f, valid, `{"alg":"RS256","kid":["x"]}`))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		d := fx.check(token, "function:get", aliceRes)
		switch d.Status {
		case 200:
			// Only the two seeds are signed; strict base64 decoding rules
			// out re-encodings of them.
			if token != valid && token != validEd {
				t.Fatalf("allowed a token that was not minted: %q", token)
			}
		case 401, 403:
		default:
			t.Fatalf("status %d: %+v", d.Status, d)
		}
		if len(token) > 100 && strings.Contains(d.Reason, token) {
			t.Fatalf("reason quotes the token")
		}
	})
}

// FuzzCheckBody feeds arbitrary JSON bodies to both check routes: the answer
// is a decision (200), a clear 400 or 413, never a 5xx or a panic.
func FuzzCheckBody(f *testing.F) {
	fx := newFixture(f, Config{MinRevisionWait: 1})
	mux := http.NewServeMux()
	fx.eng.Register(mux)
	tok := fx.tok("rsa1", aliceSub)
	for _, s := range []string{
		`{"action":"function:get","resource":"` + aliceRes + `"}`,
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

// FuzzCallID: a caller's X-Request-Id is kept only when it is a plain
// token of at most 128 characters; whatever comes in, the call id that
// goes to the log and the answer's header is one.
func FuzzCallID(f *testing.F) {
	for _, s := range []string{"", "req-42", "a b", "x\ny", strings.Repeat("a", 129), "ünïcode", `"quoted"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id := callID(in)
		if id == "" || len(id) > maxCallID || !plainID(id) {
			t.Fatalf("callID(%q) = %q", in, id)
		}
		if in != "" && len(in) <= maxCallID && plainID(in) && id != in {
			t.Fatalf("callID(%q) = %q, dropping a usable id", in, id)
		}
	})
}

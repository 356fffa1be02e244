package httpkit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Bearer abc", "abc"}, {"bearer abc", "abc"}, {"BEARER  abc ", "abc"}, {"Basic abc", ""},
		{"Bearer", ""}, {"", ""}, {"abc", ""}, {" Bearer x.y.z", "x.y.z"},
	} {
		if got := BearerToken(tc.in); got != tc.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBearer: two Authorization headers are no token, as a proxy in front
// may have read the other one.
func TestBearer(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if got := Bearer(r); got != "" {
		t.Fatalf("no header: %q", got)
	}
	r.Header.Add("Authorization", "Bearer a")
	if got := Bearer(r); got != "a" {
		t.Fatalf("one header: %q", got)
	}
	r.Header.Add("Authorization", "Bearer b")
	if got := Bearer(r); got != "" {
		t.Fatalf("two headers: %q", got)
	}
}

// TestRender: an *Error answers with its status and message; any other
// error is a 500 that names nothing of it.
func TestRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{Errorf(http.StatusConflict, "the %s exists", "user"), 409, `{"status":409,"statusCode":409,"message":"the user exists"}`},
		{errors.Join(errors.New("context"), Errorf(400, "bad")), 400, `"message":"bad"`},
		{errors.New("dial tcp 10.0.0.1:2379: refused"), 500, `"message":"Warden failed to answer this request"`},
	} {
		rec := httptest.NewRecorder()
		HandlerFunc(func(http.ResponseWriter, *http.Request) error { return tc.err }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%v: %d %s", tc.err, rec.Code, rec.Body)
		}
	}
}

// TestDecodeJSON: a body past the limit is 413, bad JSON a 400 naming the
// problem without quoting the body.
func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		N int `json:"n"`
	}
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"n":1}`, 0, ""},
		{strings.Repeat(" ", 65) + `{}`, 413, "the request body is larger than 64 bytes"},
		{`{"n":"secret-value"}`, 400, `the request body is not valid JSON: "n" must be a number`},
		{`{"n":`, 400, "the request body is not valid JSON: syntax error at byte 5"},
		{`{"n":1}x`, 400, "syntax error at byte 8"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		err := DecodeJSON(httptest.NewRecorder(), r, 64, &v)
		var he *Error
		if tc.status == 0 && err != nil || tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status || !strings.Contains(he.Message, tc.msg)) {
			t.Errorf("%q: %v", tc.body, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("%q: the error quotes the body: %v", tc.body, err)
		}
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x", "Basic y", "", "Bearer"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok := BearerToken(h)
		if tok != "" && (strings.ContainsAny(tok[:1], " \t") || !strings.Contains(h, tok)) {
			t.Fatalf("BearerToken(%q) = %q", h, tok)
		}
	})
}

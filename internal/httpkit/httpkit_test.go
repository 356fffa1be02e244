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

// TestProxiesClient: forwarded addresses are believed only from a trusted
// proxy, and only up to the first hop that is not one.
func TestProxiesClient(t *testing.T) {
	t.Parallel()
	trusted, err := ParseProxies([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, real, want string
		proxies                       Proxies
	}{
		{"no proxies trusted", "10.1.1.1:5000", "203.0.113.9", "", "10.1.1.1", nil},
		{"an untrusted peer", "198.51.100.7:5000", "203.0.113.9", "203.0.113.8", "198.51.100.7", trusted},
		{"a trusted peer", "10.1.1.1:5000", "203.0.113.9", "", "203.0.113.9", trusted},
		{"a spoofed first hop", "10.1.1.1:5000", "1.2.3.4, 203.0.113.9", "", "203.0.113.9", trusted},
		{"a chain of trusted proxies", "10.1.1.1:5000", "203.0.113.9, 192.0.2.1, 10.2.2.2", "", "203.0.113.9", trusted},
		{"X-Real-IP", "192.0.2.1:5000", "", "203.0.113.5", "203.0.113.5", trusted},
		{"garbage in the chain", "10.1.1.1:5000", "203.0.113.9, nonsense", "", "10.1.1.1", trusted},
		{"IPv6", "[::ffff:10.1.1.1]:5000", "2001:db8::1", "", "2001:db8::1", trusted},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.real != "" {
			r.Header.Set("X-Real-IP", tc.real)
		}
		if got := tc.proxies.Client(r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), `"10.0.0.0/33"`) {
		t.Errorf("a bad CIDR: %v", err)
	}
}

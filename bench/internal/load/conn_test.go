package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// echoServer answers POST /echo with the request's body and its
// Authorization header, chunked when the path is /chunked, and closes the
// connection when the path is /close. It counts new connections.
func echoServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out := r.Header.Get("Authorization") + "|" + string(body)
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(201)
			w.(http.Flusher).Flush()
			io.WriteString(w, out[:3])
			w.(http.Flusher).Flush()
			io.WriteString(w, out[3:])
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, out)
		default:
			io.WriteString(w, out)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestConnRoundTrips(t *testing.T) {
	srv, conns := echoServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := Dial(host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cases := []struct {
		name, path, token, body string
		status                  int
	}{
		{name: "content length", path: "/echo", token: "t1", body: `{"a":1}`, status: 200},
		{name: "chunked", path: "/chunked", token: "t2", body: `{"b":2}`, status: 201},
		{name: "no token", path: "/echo", body: `{}`, status: 200},
		{name: "empty body", path: "/echo", token: "t3", status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := c.Do(PostJSON(host, tc.path, tc.token, []byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			want := "|" + tc.body
			if tc.token != "" {
				want = "Bearer " + tc.token + want
			}
			if status != tc.status || string(body) != want {
				t.Fatalf("got %d %q, want %d %q", status, body, tc.status, want)
			}
		})
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for %d requests, want 1 (keep-alive)", n, len(cases))
	}
}

// TestConnReconnects: after an answer that closes the connection, the next
// request goes over a new one.
func TestConnReconnects(t *testing.T) {
	srv, conns := echoServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := Dial(host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, path := range []string{"/close", "/echo", "/echo"} {
		if status, _, err := c.Do(PostJSON(host, path, "", nil)); err != nil || status != 200 {
			t.Fatalf("%s: %d %v", path, status, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// TestClosedOverHTTP runs a short closed loop against a real server, to
// prove the pieces fit; it asserts counts and answers, never speed.
func TestClosedOverHTTP(t *testing.T) {
	srv, _ := echoServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	reqs := [][]byte{PostJSON(host, "/echo", "a", []byte("1")), PostJSON(host, "/echo", "b", []byte("2"))}
	target := Target{
		Dial:     HTTP(host),
		Request:  func(i int) []byte { return reqs[i%2] },
		Requests: 200,
		OK: func(status int, body []byte) bool {
			return status == 200 && (string(body) == "Bearer a|1" || string(body) == "Bearer b|2")
		},
	}
	res, err := Closed{Concurrency: 4, Duration: 1 << 62}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Errors != 0 {
		t.Fatalf("%d answers, %d errors; want 200, 0", res.Requests, res.Errors)
	}
}

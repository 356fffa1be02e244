package connlimit

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// serve runs h behind a Listener capped at n, on loopback.
func serve(t *testing.T, n int, h http.Handler) (*Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, n)
	srv := &http.Server{Handler: h, ConnState: l.ConnState, ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c: a read ends with
// EOF or a reset rather than waiting.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func waitOpen(t *testing.T, l *Listener, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.Stats().Open != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", l.Stats().Open, n)
		}
	}
}

// TestIdleConnectionsMakeRoom: at the cap, a fresh client is served, and
// the connection idle the longest is the one closed for it.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	l, addr := serve(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	var idle []net.Conn
	for range 3 {
		idle = append(idle, dial(t, addr))
		waitOpen(t, l, len(idle))
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("a fresh client at the cap: %v", err)
	}
	resp.Body.Close()
	if !closedByServer(idle[0]) {
		t.Fatal("the connection idle the longest is still open")
	}
	if st := l.Stats(); st.Evicted != 1 || st.Refused != 0 || st.Max != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBusyConnectionsRefuse: when every connection is in a request, a new
// one is closed at once, and those requests finish.
func TestBusyConnectionsRefuse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	l, addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	results := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/")
			if err == nil {
				resp.Body.Close()
			}
			results <- err
		}()
	}
	started.Wait()
	extra := dial(t, addr)
	if !closedByServer(extra) {
		t.Fatal("a connection past the cap, with every one busy, was kept")
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("a request in flight failed: %v", err)
		}
	}
	if st := l.Stats(); st.Refused != 1 || st.Evicted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestTLSConnectionsAreTracked: over TLS the server reports its
// *tls.Conn; the listener follows it to the connection it holds, so a
// closed one is no longer counted and an idle one makes room.
func TestTLSConnectionsAreTracked(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, 2)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	ts.Listener.Close()
	ts.Listener = l
	ts.Config.ConnState = l.ConnState
	ts.StartTLS()
	t.Cleanup(ts.Close)
	closing := ts.Client().Transport.(*http.Transport).Clone()
	closing.DisableKeepAlives = true
	for range 5 {
		resp, err := (&http.Client{Transport: closing}).Get(ts.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitOpen(t, l, 0)
	keep := ts.Client()
	resp, err := keep.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitOpen(t, l, 1)
	if st := l.Stats(); st.Evicted != 0 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
}

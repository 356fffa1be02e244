// Package connlimit caps the connections an HTTP server holds, so that no
// number of clients can exhaust the process's file descriptors (which the
// embedded etcd needs too), while idle connections, however many, never
// lock a fresh client out.
package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that holds at most Max connections. At the
// cap, a new connection takes the place of the one idle the longest: a
// keep-alive connection between requests, or one that has not sent a byte
// yet. When every connection is in a request, the new one is closed at
// once. Serve it with an http.Server whose ConnState is the Listener's,
// over TLS or not.
type Listener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*list.Element // every open connection; its place in idle, or nil while in a request
	idle  *list.List                 // of net.Conn, idle the longest first

	evicted, refused atomic.Int64
}

// New caps ln at n connections (at least 1).
func New(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, max: max(n, 1), conns: map[net.Conn]*list.Element{}, idle: list.New()}
}

// Accept waits for a connection and makes room for it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit(c) {
			return c, nil
		}
		c.Close()
		l.refused.Add(1)
	}
}

// admit counts c in, evicting the connection idle the longest when the
// cap is reached; it reports false when there is no room.
func (l *Listener) admit(c net.Conn) bool {
	l.mu.Lock()
	var victim net.Conn
	if len(l.conns) >= l.max {
		front := l.idle.Front()
		if front == nil {
			l.mu.Unlock()
			return false
		}
		victim = front.Value.(net.Conn)
		l.idle.Remove(front)
		delete(l.conns, victim)
	}
	l.conns[c] = l.idle.PushBack(c)
	l.mu.Unlock()
	if victim != nil {
		victim.Close()
		l.evicted.Add(1)
	}
	return true
}

// ConnState tracks what each connection does; set it as the server's
// http.Server.ConnState.
func (l *Listener) ConnState(c net.Conn, st http.ConnState) {
	// A TLS server reports its *tls.Conn; the listener holds the
	// connection under it.
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, open := l.conns[c]
	if !open {
		return // evicted, or not one of this listener's
	}
	switch st {
	case http.StateActive:
		if e != nil {
			l.idle.Remove(e)
			l.conns[c] = nil
		}
	case http.StateIdle:
		if e != nil {
			l.idle.Remove(e)
		}
		l.conns[c] = l.idle.PushBack(c)
	case http.StateClosed, http.StateHijacked:
		if e != nil {
			l.idle.Remove(e)
		}
		delete(l.conns, c)
	}
}

// Stats are a Listener's counts.
type Stats struct {
	// Open is the number of connections held now, Max the cap.
	Open, Max int
	// Evicted counts idle connections closed to make room; Refused
	// connections closed at once because every one was in a request.
	Evicted, Refused int64
}

// Stats returns the listener's counts.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	open := len(l.conns)
	l.mu.Unlock()
	return Stats{Open: open, Max: l.max, Evicted: l.evicted.Load(), Refused: l.refused.Load()}
}

package doors

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wardenauthz/warden/internal/httpkit"
)

// Proxy is the reverse-proxy door, for an app without a proxy in front:
// it decides every request through the route table, and passes the ones
// it lets through to the app with the caller's identity; the others never
// reach the app. Streams, large bodies and WebSocket upgrades pass as they
// are.
type Proxy struct {
	door  *Door
	proxy *httputil.ReverseProxy
}

// NewProxy returns the reverse proxy to upstream, deciding with door's
// table and counting with door's metrics (as door "proxy").
func NewProxy(door *Door, upstream *url.URL) *Proxy {
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host // the app sees the host it was asked for
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: copyBuffers{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			httpkit.WriteError(w, http.StatusBadGateway, "the app did not answer")
		},
	}
	return &Proxy{door: door, proxy: rp}
}

// copyBuffers lends the proxy its buffers for copying bodies, so that a
// request does not allocate 32 KiB that the collector must then reclaim.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpkit.HandlerFunc(p.serve).ServeHTTP(w, r)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) error {
	// Identity headers a client sent itself never reach the app.
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Warden-") {
			r.Header.Del(k)
		}
	}
	table := p.door.table()
	if table == nil {
		return httpkit.Errorf(http.StatusServiceUnavailable, "%s", ErrNoTable)
	}
	o, err := p.door.decide(w, r, table, "proxy", r.Method, r.Host, r.RequestURI)
	if err != nil {
		return err
	}
	if !o.Let() {
		return refuse(w, o)
	}
	identify(r.Header, o)
	p.proxy.ServeHTTP(w, r)
	return nil
}

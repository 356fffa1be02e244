// Package forwardauth is the forward-auth front door, /v1/authz/forward:
// nginx's auth_request, Traefik's forwardAuth and Caddy's forward_auth ask
// it whether to let a request through, naming the original request in
// headers. It decides through a route table, and answers 200 with the
// caller's identity, 401 with WWW-Authenticate, or 403.
package forwardauth

import (
	"net/http"
	"strings"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/routes"
)

// The identity headers of an allowed request. The door sets all three on
// every answer, empty when unknown, so that a proxy copying them to the
// upstream request overwrites what a client sent itself.
const (
	HeaderAgentID   = "X-Warden-Agent-Id"
	HeaderAgentType = "X-Warden-Agent-Type"
	HeaderSubject   = "X-Warden-Subject"
	// HeaderDryRun, on a request let through by a dry-run route, says
	// what enforcing would have answered.
	HeaderDryRun = "X-Warden-Dry-Run"
)

// Door serves /v1/authz/forward.
type Door struct {
	eng     *sidecar.Engine
	table   func() *routes.Table
	proxies httpkit.Proxies
}

// New returns the door over eng, deciding with the table that table
// returns at the time of each request (nil: none is loaded). proxies are
// believed about the client's address: the proxy asking the door is one.
func New(eng *sidecar.Engine, table func() *routes.Table, proxies httpkit.Proxies) *Door {
	return &Door{eng: eng, table: table, proxies: proxies}
}

// Register adds the door's route to mux.
func (d *Door) Register(mux *http.ServeMux) {
	mux.Handle("/v1/authz/forward", httpkit.HandlerFunc(d.serve))
}

func (d *Door) serve(w http.ResponseWriter, r *http.Request) error {
	method := firstOf(r.Header, "X-Forwarded-Method", "X-Original-Method")
	uri := firstOf(r.Header, "X-Forwarded-Uri", "X-Original-URI")
	switch {
	case uri == "":
		return httpkit.Errorf(http.StatusBadRequest, "the request names no original URI: send X-Forwarded-Uri (Traefik, Caddy) or X-Original-URI (nginx)")
	case method == "":
		return httpkit.Errorf(http.StatusBadRequest, "the request names no original method: send X-Forwarded-Method (Traefik, Caddy) or X-Original-Method (nginx)")
	}
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	table := d.table()
	if table == nil {
		return httpkit.Errorf(http.StatusServiceUnavailable, "this Warden node has no route table (--routes)")
	}
	o, err := table.Decide(r.Context(), d.eng, routes.Request{Method: strings.ToUpper(method), Host: host, URI: uri,
		Token: httpkit.Bearer(r), Source: d.proxies.Client(r)})
	if err != nil {
		return httpkit.Errorf(http.StatusBadRequest, "%s", err)
	}
	h := w.Header()
	h.Set(HeaderAgentID, o.Agent.ID)
	h.Set(HeaderAgentType, string(o.Agent.Type))
	h.Set(HeaderSubject, o.Subject)
	if o.Let() {
		for k, v := range o.Headers {
			if !strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Warden-") {
				h.Set(k, v)
			}
		}
		if o.DryRun {
			h.Set(HeaderDryRun, "would answer "+http.StatusText(o.Status)+": "+o.Reason)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if o.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="warden"`
		if o.Class != sidecar.ClassMissingToken {
			// RFC 6750: a token was sent and refused.
			challenge += `, error="invalid_token"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	return httpkit.Errorf(o.Status, "%s", o.Reason)
}

// firstOf returns the first of the headers that is set.
func firstOf(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

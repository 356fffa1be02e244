package doors

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wardenauthz/warden/sidecar/routes"
)

// ErrNoTable is DecideCall's answer when this node has no route table:
// the HTTP doors answer it with 503, and a door that is no HTTP handler
// should say the same.
var ErrNoTable = errors.New("this Warden node has no route table serving (--routes or --route-table; its /readyz says why)")

// DecideCall decides a request that did not arrive as an http.Request
// (Envoy's gRPC check) through the doors' table, and counts and logs the
// decision under door, as the HTTP doors do theirs: a gRPC door shares
// their table, warden_route_decisions_total and decision log. The method
// is compared upper-cased, as forward auth's. The error is ErrNoTable, or
// the table's refusal of the request (a path CleanPath refuses, a
// parameter a template refuses), which the HTTP doors answer with 400.
// requestID is the caller's (Envoy's x-request-id; "" when none): when the
// decision log is on, DecideCall returns the call id the decision is
// logged under, which the caller sends back as the HTTP doors send
// decisionlog.CallIDHeader; "" when the log is off.
func (d *Door) DecideCall(ctx context.Context, door string, req routes.Request, requestID string) (routes.Outcome, string, error) {
	table := d.table()
	if table == nil {
		return routes.Outcome{}, "", ErrNoTable
	}
	req.Method = strings.ToUpper(req.Method)
	call := d.dlog.StartID(requestID, req.Source)
	o, err := table.Decide(ctx, d.eng, req)
	if err != nil {
		return o, "", err
	}
	d.count(door, o)
	if call != nil {
		d.dlog.Record(ctx, call, o.Decision, slog.String("door", door), slog.String("route", o.Route), slog.String("mode", o.Mode),
			slog.String("method", req.Method), slog.Bool("let", o.Let()), slog.Bool("unauthenticated", o.Unauthenticated))
	}
	return o, call.ID(), nil
}

// IdentityHeaders returns the headers the HTTP doors set on their answer
// to o: the three identity headers, always, empty when unknown, so that a
// proxy copying them over the client's overwrites what it sent itself;
// and, when o lets the request through, the headers of the hooks that
// allowed and the dry-run note (HeaderDryRun).
func IdentityHeaders(o routes.Outcome) http.Header {
	h := make(http.Header, 4+len(o.Headers))
	identify(h, o)
	return h
}

// Refusal returns what the HTTP doors answer to an outcome that does not
// let the request through: the headers they set (on a 401, RFC 6750's
// WWW-Authenticate challenge, with error="invalid_token" when a token was
// sent) and the error they render with httpkit.Render (the decision's
// status and reason).
func Refusal(o routes.Outcome) (http.Header, error) {
	h := http.Header{}
	err := refuse(headerWriter(h), o)
	return h, err
}

// headerWriter is an http.ResponseWriter that keeps the headers set on it
// and nothing else: what refuse sets, for Refusal.
type headerWriter http.Header

func (w headerWriter) Header() http.Header       { return http.Header(w) }
func (headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (headerWriter) WriteHeader(int)             {}

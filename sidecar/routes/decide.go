package routes

import (
	"context"
	"fmt"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
)

// Request is what a front door asks of a table.
type Request struct {
	// Method, Host and URI are the original request's; URI is its path
	// and query as sent, still percent-encoded.
	Method, Host, URI string
	// Token is the raw bearer token, "" when none was sent.
	Token string
	// Source is the client's address, "" when unknown.
	Source string
}

// Outcome is a request decided through a table.
type Outcome struct {
	sidecar.Decision
	// Route is the matched route's name, or "default"; Mode its mode,
	// ModeEnforce or ModeDryRun.
	Route, Mode string
	// DryRun says the route is in dry-run mode: the decision is what
	// enforcing would have said, and the request is let through anyway.
	DryRun bool
	// Unauthenticated says an optional spec let the request through
	// without a valid token.
	Unauthenticated bool
}

// Let says whether the front door lets the request through: the decision
// allows, or the route is in dry-run mode.
func (o Outcome) Let() bool { return o.Allow || o.DryRun }

// Decide matches a request and decides it through eng: a route's security
// spec, or the table's default. A request the table cannot take (a path
// CleanPath refuses, a parameter a template refuses) is an error, which
// a front door answers with 400.
func (t *Table) Decide(ctx context.Context, eng *sidecar.Engine, req Request) (Outcome, error) {
	path, err := CleanPath(req.URI)
	if err != nil {
		return Outcome{}, err
	}
	m, err := t.Match(req.Method, req.Host, path)
	if err != nil {
		return Outcome{}, err
	}
	snap := eng.Snapshot()
	o := Outcome{Route: m.Name(), Mode: ModeEnforce}
	if m.Route != nil && m.Route.Mode == ModeDryRun {
		o.Mode, o.DryRun = ModeDryRun, true
	}
	info := sidecar.RequestInfo{Source: req.Source, DryRun: o.DryRun}
	if m.Route != nil {
		info.Hooks = m.Route.Hooks
	}
	switch {
	case m.Spec == nil && t.spec.Default.Allow:
		o.Decision.Decision = model.Decision{Allow: true, Status: 200, Reason: "no route matches; the table's default allows", Revision: snap.Revision}
		o.Class = sidecar.ClassOpenRoute
	case m.Spec == nil:
		o.Decision.Decision = model.Decision{Status: 403, Reason: "no route matches; the table's default denies", Revision: snap.Revision}
		o.Class = sidecar.ClassNoRoute
	case m.Spec.Mode() == model.AuthNone:
		o.Decision.Decision = model.Decision{Allow: true, Status: 200, Reason: "the route requires no authentication", Revision: snap.Revision}
		o.Class = sidecar.ClassOpenRoute
	case m.Spec.Mode() == model.AuthOptional:
		p, err := eng.Authenticate(ctx, snap, req.Token, eng.AccountOf(m.Requirements[0].Resource))
		switch {
		case err != nil && len(info.Hooks) > 0:
			// Let through unauthenticated, unless the route's hooks
			// say otherwise.
			info.Unauthenticated = true
			o.Decision = eng.Authorize(ctx, snap, p, m.Requirements, info)
			o.Unauthenticated = o.Allow
		case err != nil:
			o.Unauthenticated = true
			o.Decision.Decision = model.Decision{Allow: true, Status: 200, Reason: fmt.Sprintf("unauthenticated: %s", err), Revision: snap.Revision}
			o.Class = sidecar.ClassOpenRoute
		default:
			o.Decision = eng.Authorize(ctx, snap, p, m.Requirements, info)
		}
	default:
		o.Decision = eng.Decide(ctx, snap, req.Token, m.Requirements, info)
	}
	if o.Allow {
		o.DryRun = false // nothing to let through that enforcing would not
	}
	return o, nil
}

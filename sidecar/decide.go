package sidecar

import (
	"context"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/shard"
	"github.com/wardenauthz/warden/sidecar/state"
)

// RequestInfo is what a decision knows of the request besides its token
// and its requirements: what hooks and logs are told.
type RequestInfo struct {
	// Source is the address the request came from, without its port;
	// "" when unknown.
	Source string
	// Hooks are hooks a route chose by name: they run whatever their
	// action prefix, and one not attached in the account denies.
	Hooks []string
	// DryRun says the decision is for a route in dry-run mode: it is
	// counted under mode="dry-run".
	DryRun bool
	// Unauthenticated says the route lets a request without a valid token
	// through (authentication: optional): for such a principal, the
	// built-in decision allows, and only the route's Hooks run over it,
	// able to deny. A principal with a valid token is decided as always.
	Unauthenticated bool
}

// Decision is the engine's answer to Decide or Authorize.
type Decision struct {
	model.Decision
	// Class is the kind of the decision's reason, for metrics and logs.
	Class ReasonClass
	// Headers are what the hooks that allowed asked to send with the
	// request upstream; nil when there are none or the decision denies.
	Headers map[string]string
	// Subject is the verified token's sub, "" when authentication failed.
	Subject string
}

// Decide answers whether the bearer of token (the raw bearer token, ""
// when none was sent) meets every one of reqs: it authenticates the token,
// authorizes the principal, hooks included, and counts the decision in the
// metrics. The check API asks one requirement; a route's security spec,
// several. The first requirement names the account (else the engine's
// default account) and is what hooks see. Requirements follow the grammar
// (model.ValidatePermission): a front door refuses a request whose
// requirements do not. Without a requirement the answer is a 400.
func (e *Engine) Decide(ctx context.Context, snap *state.Snapshot, token string, reqs []model.Permission, info RequestInfo) Decision {
	if len(reqs) == 0 {
		return noRequirement(snap)
	}
	now := e.now()
	timed, start := false, now
	if e.metrics != nil && e.metrics.timed() {
		timed = true
		if !e.realClock {
			start = time.Now()
		}
	}
	// One core index for everything the check counts or locks.
	core := shard.Index()
	p := e.authenticate(ctx, snap, token, e.AccountOf(reqs[0].Resource), now, core)
	d := e.authorize(ctx, snap, p, reqs, info, now)
	if e.metrics != nil {
		e.metrics.observeCheck(core, d.Class, info.DryRun, timed, start)
	}
	return d
}

// Authorize decides whether the principal meets every requirement, then
// applies the policy hooks, and counts the decision in the metrics (as
// Decide does, untimed). A principal whose authentication failed is
// denied with 401, unless a hook in decide mode allows it.
func (e *Engine) Authorize(ctx context.Context, snap *state.Snapshot, p Principal, reqs []model.Permission, info RequestInfo) Decision {
	if len(reqs) == 0 {
		return noRequirement(snap)
	}
	d := e.authorize(ctx, snap, p, reqs, info, e.now())
	if e.metrics != nil {
		e.metrics.observeCheck(shard.Index(), d.Class, info.DryRun, false, time.Time{})
	}
	return d
}

// noRequirement answers a question with nothing to decide: a front door's
// mistake, never an allow.
func noRequirement(snap *state.Snapshot) Decision {
	return Decision{Decision: model.Decision{Status: 400, Reason: "no requirement to decide", Revision: snap.Revision}, Class: ClassInvalidToken}
}

func (e *Engine) authorize(ctx context.Context, snap *state.Snapshot, p Principal, reqs []model.Permission, info RequestInfo, now time.Time) Decision {
	var d Decision
	routeOnly := false
	switch {
	case p.err != nil && info.Unauthenticated:
		d.Decision = model.Decision{Allow: true, Status: 200, Reason: "unauthenticated: " + p.err.Error(), Revision: snap.Revision}
		d.Class, routeOnly = ClassOpenRoute, true
	case p.err != nil:
		d.Decision = model.Decision{Status: 401, Reason: p.err.Error(), Revision: snap.Revision}
		d.Class = classOf(p.err)
	default:
		d.Decision, d.Class = p.decide(reqs)
		d.Subject = p.ent.subject
	}
	set, ref := e.acquireHooks()
	if set == nil {
		if len(info.Hooks) > 0 {
			// The route's hooks are not attached: fail closed.
			return deniedBy(d, missingHook(nil, info.Hooks, p.account), ClassHookFailed)
		}
		return d
	}
	return e.runHooks(ctx, set, ref, hookRequest{principal: p, action: reqs[0].Action, resource: reqs[0].Resource, source: info.Source, now: now.Unix(),
		route: info.Hooks, routeOnly: routeOnly}, d)
}

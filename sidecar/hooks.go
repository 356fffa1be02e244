package sidecar

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/policywasm/abi"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/obs"
	"github.com/wardenauthz/warden/sidecar/internal/shard"
)

// Hook modes.
const (
	// HookRestrict makes the final answer the built-in decision AND the
	// hook's: a hook can only take permissions away. The default.
	HookRestrict = model.HookRestrict
	// HookDecide makes the hook's answer the decision.
	HookDecide = model.HookDecide
)

// AttachedHook is a policy hook and where it applies.
type AttachedHook struct {
	Hook *policywasm.Hook
	// Name names the hook in reasons; Hook.Name() when "".
	Name string
	// Mode is HookRestrict ("" too) or HookDecide.
	Mode string
	// Account limits the hook to checks in that account (the one the
	// resource names, else the default account); "" is every account.
	Account string
	// ActionPrefix limits the hook to actions that start with it; "" is
	// every action.
	ActionPrefix string
	// Broken, when set, says why the hook could not be loaded: it then
	// denies every check it applies to (fail closed), with that reason,
	// and Hook may be nil.
	Broken string

	// timing records the hook's call durations when the engine has
	// metrics; SetHooks sets it.
	timing *obs.Histogram
}

func (ah *AttachedHook) name() string {
	if ah.Name != "" || ah.Hook == nil {
		return ah.Name
	}
	return ah.Hook.Name()
}

// hookSet is an immutable list of attached hooks, swapped whole. refs
// counts the checks running it, so that the hooks it holds are closed only
// once the last of them is done.
type hookSet struct {
	hooks []AttachedHook
	// The padding keeps the counts, which cores write, off the line of
	// hooks, which every check reads.
	_    [64]byte
	refs shard.Refs
}

// acquireHooks returns the current hook set, held until releaseHooks, or
// nil when no hook is attached. A set replaced between the load and the
// hold is let go and the new one taken: a set that a check holds was
// current when it was held, so its drain can be waited for.
func (e *Engine) acquireHooks() (*hookSet, int) {
	for {
		set := e.hooks.Load()
		if set == nil || len(set.hooks) == 0 {
			return nil, 0
		}
		i := set.refs.Acquire()
		if e.hooks.Load() == set {
			return set, i
		}
		set.refs.Release(i)
	}
}

// drainPoll is how often the sets replaced by SetHooks are looked at until
// no check holds them.
const drainPoll = 5 * time.Millisecond

// SetHooks replaces the engine's hooks at once: a check uses either the old
// set or the new one, never a mix, and none fails during the swap. The
// returned channel is closed once no check holds any set replaced so far:
// then the caller may close the hooks it no longer attaches (a closed hook
// fails closed, it never panics).
func (e *Engine) SetHooks(hooks []AttachedHook) (drained <-chan struct{}, err error) {
	for _, h := range hooks {
		if h.Mode != "" && h.Mode != HookRestrict && h.Mode != HookDecide {
			return nil, fmt.Errorf("hook %q: mode %q must be %s or %s", h.name(), h.Mode, HookRestrict, HookDecide)
		}
		if h.Hook == nil && h.Broken == "" {
			return nil, fmt.Errorf("hook %q has no module and is not marked broken", h.name())
		}
	}
	set := &hookSet{hooks: append([]AttachedHook(nil), hooks...)}
	if m := e.metrics; m != nil {
		for i := range set.hooks {
			if set.hooks[i].Hook != nil {
				set.hooks[i].timing = m.hookTiming(set.hooks[i].Account, set.hooks[i].name())
			}
		}
	}
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	if old := e.hooks.Swap(set); old != nil {
		e.draining = append(e.draining, old)
	}
	if m := e.metrics; m != nil {
		m.forgetHooks(set.hooks)
	}
	done := make(chan struct{})
	go e.drain(slices.Clone(e.draining), done)
	return done, nil
}

// drain waits until no check holds any of sets, forgets them and closes
// done.
func (e *Engine) drain(sets []*hookSet, done chan struct{}) {
	for _, s := range sets {
		for !s.refs.Zero() {
			time.Sleep(drainPoll)
		}
	}
	e.drainMu.Lock()
	e.draining = slices.DeleteFunc(e.draining, func(s *hookSet) bool { return slices.Contains(sets, s) })
	e.drainMu.Unlock()
	close(done)
}

// hookRequest is what a check asked, for hooks: copies of the Request's
// fields, so that a Request on a caller's stack stays there.
type hookRequest struct {
	principal Principal // the token, its account and what it verified as
	// action and resource are the first requirement's: what hooks are
	// chosen by and see.
	action, resource string
	source           string // the source address, "" when unknown
	now              int64  // unix seconds
	// route are the hooks a route chose by name (RequestInfo.Hooks);
	// with routeOnly, no other hook runs (an unauthenticated request on an
	// optional route).
	route     []string
	routeOnly bool
}

// missingHook names the first of the hooks a route chose that set does
// not attach in account, "" when all are.
func missingHook(set *hookSet, names []string, account string) string {
	for _, n := range names {
		found := false
		if set != nil {
			for i := range set.hooks {
				ah := &set.hooks[i]
				if ah.name() == n && (ah.Account == "" || ah.Account == account) {
					found = true
					break
				}
			}
		}
		if !found {
			return fmt.Sprintf("the route names hook %q, which is not attached in account %q", n, account)
		}
	}
	return ""
}

// runHooks applies set, held on shard ref, and releases it, even if a hook
// call panics: a set never released would never drain.
func (e *Engine) runHooks(ctx context.Context, set *hookSet, ref int, req hookRequest, d Decision) Decision {
	defer set.refs.Release(ref)
	return e.applyHooks(ctx, set, req, d)
}

// applyHooks runs the hooks that apply to the request over a built-in
// decision: those whose action prefix the action starts with, and those
// the route chose by name (a route's hook that is not attached denies).
// Decide hooks run first, in name order, and the last one that
// answers sets the decision; then restrict hooks run, in name order, while
// the decision allows, each able only to take it away. A hook that fails
// (broken, trapped, past its deadline or budget, garbage) denies, and a
// failure or a restrict hook's denial is final: no hook after it runs, so
// no decide hook can turn either into an allow.
func (e *Engine) applyHooks(ctx context.Context, set *hookSet, req hookRequest, d Decision) Decision {
	var input []byte
	defer func() {
		if input != nil {
			inputBufs.Put(&input)
		}
	}()
	action, account := req.action, req.principal.account
	if len(req.route) > 0 {
		if why := missingHook(set, req.route, account); why != "" {
			return deniedBy(d, why, ClassHookFailed)
		}
	}
	for _, decidePass := range [2]bool{true, false} {
		for i := range set.hooks {
			ah := &set.hooks[i]
			named := slices.Contains(req.route, ah.name())
			if (ah.Mode == HookDecide) != decidePass || (ah.Account != "" && ah.Account != account) ||
				!(named || !req.routeOnly && strings.HasPrefix(action, ah.ActionPrefix)) {
				continue
			}
			if !decidePass && !d.Allow {
				return d // restrict can only take away, and nothing is allowed
			}
			if ah.Broken != "" {
				return deniedBy(d, fmt.Sprintf("hook %q could not be loaded: %s", ah.name(), ah.Broken), ClassHookFailed)
			}
			if input == nil {
				input = hookInput(req, d.Decision)
			}
			var start time.Time
			if ah.timing != nil {
				start = time.Now()
			}
			res := ah.Hook.Evaluate(ctx, input)
			if ah.timing != nil {
				ah.timing.Observe(time.Since(start))
			}
			before := d.Allow
			switch {
			case res.Failure != "":
				return deniedBy(d, res.Reason, ClassHookFailed)
			case !res.Allow:
				d = deniedBy(d, hookReason(ah.name(), "denied", res.Reason), ClassHookDenied)
				if !decidePass {
					return d
				}
			case decidePass:
				d.Allow, d.Status = true, 200
				d.Reason = hookReason(ah.name(), "allowed", res.Reason)
				if d.Class != ClassGranted {
					d.Class = ClassHookAllowed
				}
			}
			if d.Allow && len(res.Headers) > 0 {
				d.Headers = withHeaders(d.Headers, res.Headers)
			}
			if d.Allow != before {
				// The hooks after it see the decision as it now is.
				inputBufs.Put(&input)
				input = nil
			}
		}
	}
	return d
}

// withHeaders returns have with add's headers over it, in a new map: a
// hook's answer is not changed.
func withHeaders(have, add map[string]string) map[string]string {
	out := make(map[string]string, len(have)+len(add))
	maps.Copy(out, have)
	maps.Copy(out, add)
	return out
}

// deniedBy turns d into a denial of class for reason: what a hook allowed
// with goes too.
func deniedBy(d Decision, reason string, class ReasonClass) Decision {
	d.Allow, d.Reason, d.Grant, d.Headers, d.Class = false, reason, model.Permission{}, nil, class
	if d.Status == 200 {
		d.Status = 403
	}
	return d
}

func hookReason(name, verdict, reason string) string {
	if reason == "" {
		return fmt.Sprintf("hook %q %s", name, verdict)
	}
	return fmt.Sprintf("hook %q %s: %s", name, verdict, reason)
}

// hookInput is the decision context hooks receive (abi.Input): the
// request, the token's verified claims, the agent, the matched grant and
// the built-in decision, and the time.
func hookInput(req hookRequest, d model.Decision) []byte {
	in := abi.Input{Now: req.now, Action: req.action, Resource: model.NormalizeResource(req.resource), SourceIP: req.source,
		AgentID: d.Agent.ID, AgentType: string(d.Agent.Type), GrantAction: d.Grant.Action, GrantResource: d.Grant.Resource,
		Allow: d.Allow, Status: d.Status, Reason: d.Reason}
	if d.Status != 401 {
		in.Claims = req.principal.claims()
	}
	return abi.AppendInput((*inputBufs.Get().(*[]byte))[:0], &in)
}

// inputBufs recycles the buffers hook inputs are appended to.
var inputBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

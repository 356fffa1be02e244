package sidecar

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
	"github.com/wardenauthz/warden/sidecar/internal/shard"
	"github.com/wardenauthz/warden/sidecar/internal/tokencache"
	"github.com/wardenauthz/warden/sidecar/state"
)

// Engine decides checks against a state store.
type Engine struct {
	cfg   Config
	state *state.DB
	log   *slog.Logger
	now   func() time.Time
	keys  *keys.Registry
	cache *tokencache.Cache[entry]
	hooks atomic.Pointer[hookSet]
	// metrics is nil when the engine records none.
	metrics *metrics
	// realClock says now is time.Now, so its readings time checks too.
	realClock bool
	// awaitHooks, when set, waits until the hooks of a revision are
	// attached; see AwaitHooksWith.
	awaitHooks atomic.Pointer[func(context.Context, int64) error]
	// shared are the resolutions shared in the latest snapshot resolved
	// in (sharedIn).
	shared atomic.Pointer[sharedResolutions]
	// draining are the hook sets replaced but maybe still held by checks.
	drainMu  sync.Mutex
	draining []*hookSet
}

// AwaitHooksWith makes a check that asks for a minRevision wait, after the
// state, until wait says the policy hooks of that revision are attached
// too: a caller that wrote a hook and passes the write's revision is then
// judged with it.
func (e *Engine) AwaitHooksWith(wait func(ctx context.Context, rev int64) error) {
	e.awaitHooks.Store(&wait)
}

// ErrHooksBehind says the state reached a revision but the policy hooks of
// that revision are not attached yet.
var ErrHooksBehind = errors.New("the policy hooks of the revision are not attached yet")

// WaitRevision waits until the state is at revision rev or later, and the
// hooks of that revision are attached, and returns the state's snapshot.
func (e *Engine) WaitRevision(ctx context.Context, rev int64) (*state.Snapshot, error) {
	snap, err := e.state.WaitRevision(ctx, rev)
	if err != nil {
		return nil, err
	}
	if wait := e.awaitHooks.Load(); wait != nil {
		if err := (*wait)(ctx, rev); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHooksBehind, err)
		}
		// The state may have moved on while the hooks loaded; a check
		// reads the newest.
		snap = e.state.Snapshot()
	}
	return snap, nil
}

// New returns an engine reading st. Call Run to refresh issuer keys in the
// background.
func New(st *state.DB, cfg Config, deps Deps) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sidecar configuration: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	realClock := deps.Now == nil
	if deps.Now == nil {
		deps.Now = time.Now
	}
	log := deps.Logger.With("component", "sidecar")
	e := &Engine{
		cfg:   cfg,
		state: st,
		log:   log,
		now:   deps.Now,
		keys: keys.NewRegistry(keys.RegistryConfig{
			HTTPClient:    deps.HTTPClient,
			Now:           deps.Now,
			Logger:        deps.Logger.With("component", "keys"),
			MaxStaleness:  cfg.MaxKeyStaleness,
			AllowInsecure: cfg.AllowInsecureKeyURLs,
		}),
		cache: tokencache.New[entry](cfg.TokenCacheSize),
		// Claims are validated by the engine, the same way on a cache hit
		// and a miss, with the injected clock. Strict decoding refuses
		// non-canonical base64, so one signature has one spelling.
		realClock: realClock,
	}
	if deps.Registerer != nil {
		e.metrics = newMetrics(cfg.TimingSample)
		if err := deps.Registerer.Register(collector{e}); err != nil {
			return nil, fmt.Errorf("registering the check metrics: %w", err)
		}
	}
	return e, nil
}

// Run refreshes issuer keys in the background until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	e.keys.Run(ctx, time.Second)
}

// State returns the state the engine reads.
func (e *Engine) State() *state.DB { return e.state }

// Snapshot returns the state's current snapshot.
func (e *Engine) Snapshot() *state.Snapshot { return e.state.Snapshot() }

// Config returns the engine's configuration, defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// entry is a verified token: its signature checked out against its issuer's
// keys as they were, so only the time claims and audience need checking on
// a hit, plus whether the issuer's keys changed since.
type entry struct {
	account, issuer, subject string
	exp, nbf                 int64        // unix seconds; 0 when absent
	digest                   [32]byte     // the issuer row's key digest
	remote                   *keys.Remote // nil for uploaded keys
	remoteGen                uint64
	// verifiedIn is the snapshot the token was verified in; resolving in
	// it needs no check that the issuer is unchanged.
	verifiedIn *state.Snapshot

	hasInline bool
	inline    []model.Permission
	inlineErr error // an ErrInlinePermissions

	// memo is the agent resolution against one snapshot.
	memo atomic.Pointer[resolution]
	// claims is the token's payload, decoded the first time a hook asks
	// for it: a token checked without hooks never holds it.
	claims atomic.Pointer[[]byte]
}

// resolution is what an entry resolves to in one state snapshot.
type resolution struct {
	snap *state.Snapshot
	// stale says the token's issuer or its keys changed in this snapshot:
	// the token must be verified again.
	stale bool
	agent model.AgentRef
	// perms are the effective permissions: the agent's grants, or the
	// token's inline permissions once they proved narrower.
	perms []model.Permission
	// denial, when set, refuses every check with 403: an
	// ErrUnknownIdentity or an ErrInlinePermissions.
	denial error
}

// Principal is the outcome of authentication: a verified token resolved
// to an agent in one snapshot, or the denial of the token (Err).
type Principal struct {
	res     *resolution // nil when authentication failed
	ent     *entry
	token   string
	account string
	err     error
}

// Err is why authentication failed, nil when it did not.
func (p Principal) Err() error { return p.err }

// claims returns the principal's verified payload as a JSON object:
// decoded once per cached token, not once per check. nil when
// authentication failed.
func (p Principal) claims() []byte {
	if p.ent == nil {
		return nil
	}
	if c := p.ent.claims.Load(); c != nil {
		return *c
	}
	// Verification checked the payload is base64url of a JSON object.
	_, rest, _ := strings.Cut(p.token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	c, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	p.ent.claims.Store(&c)
	return c
}

// Identity is the verified token's issuer and subject; empty when
// authentication failed.
func (p Principal) Identity() model.Identity {
	if p.ent == nil || p.err != nil {
		return model.Identity{}
	}
	return model.Identity{IssuerID: p.ent.issuer, Subject: p.ent.subject}
}

// Agent returns the agent the token resolved to; its id is empty when the
// token's identity is unknown or authentication failed.
func (p Principal) Agent() model.AgentRef {
	if p.res == nil {
		return model.AgentRef{}
	}
	return p.res.agent
}

// Denial says why every check of this principal is refused, or nil when
// none is: the authentication's error, an ErrUnknownIdentity or an
// ErrInlinePermissions.
func (p Principal) Denial() error {
	if p.res == nil {
		return p.err
	}
	return p.res.denial
}

// Permissions returns the principal's effective permissions.
func (p Principal) Permissions() []model.Permission {
	if p.res == nil {
		return nil
	}
	return p.res.perms
}

// Check decides whether the holder of token may perform action on resource.
// token is the raw bearer token ("" when none was sent).
// An action or resource that breaks the grammar is refused with Status 400,
// never matched.
func (e *Engine) Check(ctx context.Context, token, action, resource string) model.Decision {
	if err := model.ValidatePermission(model.Permission{Action: action, Resource: resource}); err != nil {
		return model.Decision{Status: 400, Reason: err.Error(), Revision: e.state.Revision()}
	}
	reqs := [1]model.Permission{{Action: action, Resource: resource}}
	return e.Decide(ctx, e.state.Snapshot(), token, reqs[:], RequestInfo{}).Decision
}

// AccountOf returns the account a resource names, else the engine's
// default account.
func (e *Engine) AccountOf(resource string) string {
	if acc, ok := model.AccountFromResource(resource); ok {
		return acc
	}
	return e.cfg.DefaultAccount
}

// Decide matches the principal's permissions against one requirement,
// without hooks: the admin API's authorization of its callers.
func (p Principal) Decide(action, resource string) model.Decision {
	reqs := [1]model.Permission{{Action: action, Resource: resource}}
	d, _ := p.decide(reqs[:])
	return d
}

// decide matches the principal's permissions against every requirement:
// the first one no permission covers denies, and the grant reported is the
// one covering the first requirement.
func (p Principal) decide(reqs []model.Permission) (model.Decision, ReasonClass) {
	r := p.res
	d := model.Decision{Agent: r.agent, Revision: r.snap.Revision}
	if r.denial != nil {
		d.Status, d.Reason = 403, r.denial.Error()
		return d, classOf(r.denial)
	}
	for i, req := range reqs {
		g, ok := model.Covers(r.perms, req.Action, req.Resource)
		if !ok {
			d.Status, d.Grant = 403, model.Permission{}
			d.Reason = fmt.Sprintf("no grant allows '%s' on '%s'", req.Action, model.NormalizeResource(req.Resource))
			return d, ClassNoGrant
		}
		if i == 0 {
			d.Grant = g
		}
	}
	d.Allow, d.Status, d.Reason = true, 200, "allowed"
	return d, ClassGranted
}

// Authenticate verifies token for an account in snap and resolves its
// agent. It fails with a denial of authentication (its class by errors.Is:
// ErrMissingToken, ErrTokenExpired, ErrTokenNotYetValid, ErrInvalidToken);
// the Principal may still deny every check (Principal.Denial).
func (e *Engine) Authenticate(ctx context.Context, snap *state.Snapshot, token, account string) (Principal, error) {
	p := e.authenticate(ctx, snap, token, account, e.now(), shard.Index())
	return p, p.err
}

// errNoAccount refuses a check whose resource names no account on a node
// without a default one.
var errNoAccount = invalid("the resource names no account and there is no default account")

// authenticate is Authenticate at now, on the caller's core (shard.Index):
// the Principal carries the error.
func (e *Engine) authenticate(ctx context.Context, snap *state.Snapshot, token, account string, now time.Time, core int) Principal {
	fail := func(err error) Principal { return Principal{token: token, account: account, err: err} }
	switch {
	case token == "":
		return fail(ErrMissingToken)
	case len(token) > MaxTokenSize:
		return fail(errTooLarge)
	case account == "":
		return fail(errNoAccount)
	}
	ent, hit := e.cache.GetOn(core, account, token, now)
	for attempt := 0; ; attempt++ {
		if hit {
			if err := e.checkEntry(ent, now); err != nil {
				e.cache.Delete(account, token)
				if err != errReverify {
					return fail(err)
				}
				hit = false
			}
		}
		if !hit {
			var err error
			if ent, err = e.verify(ctx, snap, account, token, now); err != nil {
				return fail(err)
			}
			// Resolved before the entry is shared, which lets its
			// subject become the agent's copy of the text.
			res, agent := e.resolveAgent(snap, ent)
			shareSubject(agent, ent)
			ent.memo.Store(res)
			e.cache.Put(account, token, ent, e.cacheUntil(ent, now), now)
		}
		res := ent.memo.Load()
		if res == nil || res.snap != snap {
			res = e.resolve(snap, ent)
			ent.memo.Store(res)
		}
		if !res.stale {
			return Principal{res: res, ent: ent, token: token, account: account}
		}
		// The issuer changed under a cached token: verify it again, once.
		e.cache.Delete(account, token)
		if attempt > 0 || !hit {
			return fail(errKeysChanged)
		}
		hit = false
	}
}

// checkEntry checks a cached entry at now: the time claims, the audience,
// and whether its fetched keys are unchanged and fresh (errReverify when
// they are not: the token may still verify).
func (e *Engine) checkEntry(ent *entry, now time.Time) error {
	if ent.remote != nil && !ent.remote.Usable(ent.remoteGen, now) {
		return errReverify
	}
	return e.checkTimes(ent.exp, ent.nbf, now)
}

func (e *Engine) checkTimes(exp, nbf int64, now time.Time) error {
	leeway := e.cfg.Leeway
	if exp != 0 && !now.Before(time.Unix(exp, 0).Add(leeway)) {
		return ErrTokenExpired
	}
	if nbf != 0 && now.Before(time.Unix(nbf, 0).Add(-leeway)) {
		return ErrTokenNotYetValid
	}
	return nil
}

func (e *Engine) audienceOK(aud []string) bool {
	for _, a := range aud {
		for _, want := range e.cfg.Audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}

// noExpTTL bounds how long a token without exp stays cached.
const noExpTTL = 5 * time.Minute

func (e *Engine) cacheUntil(ent *entry, now time.Time) time.Time {
	if ent.exp == 0 {
		return now.Add(noExpTTL)
	}
	return time.Unix(ent.exp, 0).Add(e.cfg.Leeway)
}

// sharedResolutions are the resolutions of agents' tokens without inline
// permissions in one snapshot, by agent id: a cached token then costs the
// collector no resolution of its own. They are dropped with their
// snapshot, when a newer one is resolved in.
type sharedResolutions struct {
	snap *state.Snapshot
	m    sync.Map // agent id → *resolution
}

// sharedIn returns the shared resolutions of snap, starting them when snap
// is newer than the last; nil for an older snapshot, whose resolutions are
// not shared.
func (e *Engine) sharedIn(snap *state.Snapshot) *sharedResolutions {
	for {
		cur := e.shared.Load()
		switch {
		case cur != nil && cur.snap == snap:
			return cur
		case cur != nil && cur.snap.Revision >= snap.Revision:
			return nil
		}
		next := &sharedResolutions{snap: snap}
		if e.shared.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// shareSubject makes a new entry's subject the copy of the same text the
// state holds, in the identity of the agent it resolved to (nil: none):
// every token of the agent then shares one string, where each kept the
// copy its claims were decoded into, one more object per cached token for
// the collector to mark. It must run before the entry is shared.
func shareSubject(agent *model.Agent, ent *entry) {
	if agent == nil {
		return
	}
	for _, id := range agent.Identities {
		if id.IssuerID == ent.issuer && id.Subject == ent.subject {
			ent.subject = id.Subject
			return
		}
	}
}

// resolve finds an entry's agent and effective permissions in snap.
func (e *Engine) resolve(snap *state.Snapshot, ent *entry) *resolution {
	res, _ := e.resolveAgent(snap, ent)
	return res
}

// resolveAgent is resolve, with the agent found (nil when none was).
func (e *Engine) resolveAgent(snap *state.Snapshot, ent *entry) (*resolution, *model.Agent) {
	res := &resolution{snap: snap}
	if snap != ent.verifiedIn {
		row, ok := snap.Issuer(ent.account, ent.issuer)
		if !ok || row.Digest != ent.digest {
			res.stale = true
			return res, nil
		}
	}
	agent, ok := snap.AgentByIdentity(ent.account, ent.issuer, ent.subject)
	if !ok {
		res.denial = ErrUnknownIdentity
		return res, nil
	}
	if !ent.hasInline {
		// Every token of the agent without inline permissions resolves to
		// the same: they share one resolution in a snapshot.
		shared := e.sharedIn(snap)
		if shared != nil {
			if r, ok := shared.m.Load(agent.ID); ok {
				return r.(*resolution), agent
			}
		}
		res.agent = model.AgentRef{ID: agent.ID, Type: agent.Type}
		res.perms = agent.Grants
		if shared != nil {
			shared.m.Store(agent.ID, res)
		}
		return res, agent
	}
	res.agent = model.AgentRef{ID: agent.ID, Type: agent.Type}
	res.perms = agent.Grants
	if ent.inlineErr != nil {
		res.denial = ent.inlineErr
		return res, agent
	}
	perms, err := model.Narrow(agent.Grants, ent.inline)
	if err != nil {
		res.denial = &denial{class: ErrInlinePermissions, msg: err.Error()}
		return res, agent
	}
	res.perms = perms
	return res, agent
}

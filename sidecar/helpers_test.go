package sidecar

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// fixture is an engine in a testkit world.
type fixture struct {
	*testkit.World
	t     testing.TB
	store *state.DB
	eng   *Engine
	clock *testkit.Clock
	reg   *prometheus.Registry
}

// newFixture builds an engine over a populated testkit world.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	return newFixtureWith(t, cfg, Deps{})
}

// newFixtureWith is newFixture with deps; the fixture sets the clock and
// the registry.
func newFixtureWith(t testing.TB, cfg Config, deps Deps) *fixture {
	t.Helper()
	w := testkit.New(t)
	f := &fixture{World: w, t: t, store: w.Store, clock: w.Clock, reg: w.Reg}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{testkit.Aud}
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = testkit.Acc
	}
	deps.Now, deps.Registerer = f.clock.Now, f.reg
	eng, err := New(f.store, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	w.Populate()
	return f
}

func (f *fixture) apply(fn func(*state.Batch)) { f.Apply(fn) }

// tok mints a token for subject signed with the named key (kid = name).
func (f *fixture) tok(keyName, subject string, edit ...func(*sdk.TokenSpec)) string {
	f.t.Helper()
	return f.Tok(keyName, subject, edit...)
}

func (f *fixture) check(token, action, resource string) model.Decision {
	return f.eng.Check(context.Background(), token, action, resource)
}

// decide is a check through Engine.Decide, with its class.
func (f *fixture) decide(token, action, resource string) Decision {
	reqs := []model.Permission{{Action: action, Resource: resource}}
	return f.eng.Decide(context.Background(), f.store.Snapshot(), token, reqs, RequestInfo{})
}

// Package enginetest builds an engine in a populated testkit world, for the
// tests of the engine's front doors and route tables.
package enginetest

import (
	"testing"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sidecar"
)

// New returns a populated world and an engine over it, on the world's
// clock and with the world's registry, accepting testkit.Aud, with
// testkit.Acc as the default account.
func New(t testing.TB) (*testkit.World, *sidecar.Engine) {
	t.Helper()
	w := testkit.New(t)
	deps := sidecar.Deps{Now: w.Clock.Now, Registerer: w.Reg}
	eng, err := sidecar.New(w.Store, sidecar.Config{Audiences: []string{testkit.Aud}, DefaultAccount: testkit.Acc}, deps)
	if err != nil {
		t.Fatal(err)
	}
	w.Populate()
	return w, eng
}

package checkapi

import (
	"github.com/wardenauthz/warden/sidecar/internal/enginetest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sidecar"
)

// fixture is the check API over an engine in a testkit world.
type fixture struct {
	*testkit.World
	t   testing.TB
	eng *sidecar.Engine
	api *API
}

// newFixture builds the check API with cfg over an engine in a populated
// world.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	return newFixtureLogging(t, cfg, io.Discard)
}

// newFixtureLogging is newFixture with the decision log written to out.
func newFixtureLogging(t testing.TB, cfg Config, out io.Writer) *fixture {
	t.Helper()
	w, eng := enginetest.New(t)
	api, err := New(eng, cfg, slog.New(slog.NewJSONHandler(out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{World: w, t: t, eng: eng, api: api}
}

// mux serves the check API's routes.
func (f *fixture) mux() *http.ServeMux {
	mux := http.NewServeMux()
	f.api.Register(mux)
	return mux
}

// server serves the check API on loopback until the test ends, every
// answer held to docs/openapi.yaml.
func (f *fixture) server() *httptest.Server {
	srv := httptest.NewServer(contract.Wrap(f.t, f.mux()))
	f.t.Cleanup(srv.Close)
	return srv
}

// tok mints a token for subject signed with the named key (kid = name).
func (f *fixture) tok(keyName, subject string, edit ...func(*sdk.TokenSpec)) string {
	f.t.Helper()
	return f.Tok(keyName, subject, edit...)
}

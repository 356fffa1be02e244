package sidecar

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// Test keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce sync.Once
	testKeys map[string]crypto.Signer
)

func key(t testing.TB, name string) crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		rsa1, _ := rsa.GenerateKey(rand.Reader, 2048)
		rsa2, _ := rsa.GenerateKey(rand.Reader, 2048)
		ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		testKeys = map[string]crypto.Signer{
			"rsa1": rsa1, "rsa2": rsa2, "ec256": ec256, "ec384": ec384, "ec521": ec521, "ed": ed,
		}
	})
	k := testKeys[name]
	if k == nil {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func pemOf(t testing.TB, k crypto.Signer) string {
	t.Helper()
	s, err := sdk.PublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testAud    = "http://warden.test"
	testIssuer = "https://issuer.test"
)

var (
	testAcc   = "acc-0123456789abcdef"
	otherAcc  = "acc-fedcba9876543210"
	aliceID   = "usr-00000000000000a1"
	bobID     = "clt-00000000000000b0"
	carolID   = "usr-00000000000000c0"
	aliceSub  = "alice"
	aliceRes  = "/account/" + testAcc + "/subscription/sub-0000000000000001/"
	accountRe = "/account/" + testAcc + "/"
)

type fixture struct {
	t     testing.TB
	store *state.Store
	eng   *Engine
	clock *clock
	reg   *prometheus.Registry
	rev   int64
}

// newFixture builds an engine over a state with one account, an issuer with
// uploaded keys (rsa1, ec256, ec384, ec521, ed), alice (a user with two
// grants), bob (a client with none) and carol (a user with "*" on the
// account).
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	return newFixtureWith(t, cfg, Deps{})
}

// newFixtureWith is newFixture with deps; the fixture sets the clock and
// the registry.
func newFixtureWith(t testing.TB, cfg Config, deps Deps) *fixture {
	t.Helper()
	f := &fixture{t: t, store: state.New(), clock: &clock{t: time.Unix(1_800_000_000, 0)}, reg: prometheus.NewPedanticRegistry()}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{testAud}
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = testAcc
	}
	deps.Now, deps.Registerer = f.clock.Now, f.reg
	eng, err := New(f.store, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	f.apply(func(b *state.Batch) {
		b.PutAccount(testAcc)
		b.PutAccount(otherAcc)
		var pks []model.PublicKey
		for _, name := range []string{"rsa1", "ec256", "ec384", "ec521", "ed"} {
			pks = append(pks, model.PublicKey{KeyID: name, PublicKey: pemOf(t, key(t, name))})
		}
		b.PutIssuer(testAcc, model.Issuer{ID: testIssuer, PublicKeys: pks})
		b.PutAgent(model.Agent{ID: aliceID, Type: model.AgentUser, Account: testAcc,
			Identities: []model.Identity{{IssuerID: testIssuer, Subject: aliceSub}},
			Grants: []model.Permission{
				{Action: "function:get", Resource: aliceRes},
				{Action: "user:*", Resource: accountRe + "user"},
			}})
		b.PutAgent(model.Agent{ID: bobID, Type: model.AgentClient, Account: testAcc,
			Identities: []model.Identity{{IssuerID: testIssuer, Subject: "bob"}}})
		b.PutAgent(model.Agent{ID: carolID, Type: model.AgentUser, Account: testAcc,
			Identities: []model.Identity{{IssuerID: testIssuer, Subject: "carol"}},
			Grants:     []model.Permission{{Action: "*", Resource: accountRe}}})
	})
	return f
}

func (f *fixture) apply(fn func(*state.Batch)) {
	f.t.Helper()
	f.rev++
	b := &state.Batch{Revision: f.rev}
	fn(b)
	if _, err := f.store.Apply(b); err != nil {
		f.t.Fatal(err)
	}
}

// tok mints a token for subject signed with the named key (kid = name),
// with the fixture's clock and audience unless spec overrides them.
func (f *fixture) tok(keyName, subject string, edit ...func(*sdk.TokenSpec)) string {
	f.t.Helper()
	spec := sdk.TokenSpec{
		PrivateKey: key(f.t, keyName), KeyID: keyName, Issuer: testIssuer, Subject: subject,
		Audience: testAud, Now: f.clock.Now(),
	}
	for _, e := range edit {
		e(&spec)
	}
	s, err := sdk.MintToken(spec)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// rawTok signs arbitrary claims and headers with the named key and method.
func rawTok(t testing.TB, method jwt.SigningMethod, k any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(method, claims)
	for h, v := range header {
		tk.Header[h] = v
	}
	s, err := tk.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withHeader replaces a token's header, keeping its payload and signature.
func withHeader(t testing.TB, token, header string) string {
	t.Helper()
	parts := strings.SplitN(token, ".", 2)
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1]
}

func (f *fixture) check(token, action, resource string) model.Decision {
	return f.eng.Check(context.Background(), token, action, resource)
}

// aliceClaims are the claims of a token of alice's, valid for an hour from
// now, as edit changes them (nil: none).
func aliceClaims(now time.Time, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"iss": testIssuer, "sub": aliceSub, "aud": testAud, "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

// decide is a check through Engine.Decide, with its class.
func (f *fixture) decide(token, action, resource string) Decision {
	reqs := []model.Permission{{Action: action, Resource: resource}}
	return f.eng.Decide(context.Background(), f.store.Snapshot(), token, reqs, RequestInfo{})
}

// Package testkit is the world the engine's tests and its front doors'
// tests decide in: a state with one account, an issuer with uploaded keys,
// agents with grants, a settable clock, and tokens minted for them. It
// builds no engine, so that the engine's own tests can use it too.
package testkit

import (
	"bytes"
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
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// The world's names.
const (
	Aud        = "http://warden.test"
	Issuer     = "https://issuer.test"
	Acc        = "acc-0123456789abcdef"
	OtherAcc   = "acc-fedcba9876543210"
	AliceID    = "usr-00000000000000a1"
	BobID      = "clt-00000000000000b0"
	CarolID    = "usr-00000000000000c0"
	AliceSub   = "alice"
	AliceRes   = "/account/" + Acc + "/subscription/sub-0000000000000001/"
	AccountRes = "/account/" + Acc + "/"
)

// FunctionRoute is a route of a route table (an item of its routes):
// GET on a subscription's function requires function:get on it.
const FunctionRoute = `  - name: fn
    methods: [GET]
    path: /account/{acc}/subscription/{sub}/fn/{fn}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{acc}}/subscription/{{sub}}/fn/{{fn}}/
`

// DoorsTable is the front doors' tests' route table: FunctionRoute, and a
// dry-run route that Bob's grants deny.
const DoorsTable = `
routes:
` + FunctionRoute + `  - name: admin-dry
    path: /admin/
    mode: dry-run
    security:
      authentication: required
      authorization:
        - action: user:delete
          resource: /account/` + Acc + `/user/
`

// Test keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce sync.Once
	keys     map[string]crypto.Signer
)

// Key returns the named test key: rsa1, rsa2, ec256, ec384, ec521 or ed.
func Key(t testing.TB, name string) crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		rsa1, _ := rsa.GenerateKey(rand.Reader, 2048)
		rsa2, _ := rsa.GenerateKey(rand.Reader, 2048)
		ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		keys = map[string]crypto.Signer{
			"rsa1": rsa1, "rsa2": rsa2, "ec256": ec256, "ec384": ec384, "ec521": ec521, "ed": ed,
		}
	})
	k := keys[name]
	if k == nil {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// PEM returns a key's public half as PEM.
func PEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	s, err := sdk.PublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// World is a state, a clock and a metrics registry.
type World struct {
	T     testing.TB
	Store *state.DB
	Clock *Clock
	Reg   *prometheus.Registry
	rev   int64
}

// New returns an empty world; Populate fills it.
func New(t testing.TB) *World {
	return &World{T: t, Store: state.New(), Clock: NewClock(time.Unix(1_800_000_000, 0)), Reg: prometheus.NewPedanticRegistry()}
}

// Populate adds one account (and another, empty), an issuer with uploaded
// keys (rsa1, ec256, ec384, ec521, ed), alice (a user with two grants),
// bob (a client with none) and carol (a user with "*" on the account).
func (w *World) Populate() {
	w.T.Helper()
	w.Apply(func(b *state.Batch) {
		b.PutAccount(Acc)
		b.PutAccount(OtherAcc)
		var pks []model.PublicKey
		for _, name := range []string{"rsa1", "ec256", "ec384", "ec521", "ed"} {
			pks = append(pks, model.PublicKey{KeyID: name, PublicKey: PEM(w.T, Key(w.T, name))})
		}
		b.PutIssuer(Acc, model.Issuer{ID: Issuer, PublicKeys: pks})
		b.PutAgent(model.Agent{ID: AliceID, Type: model.AgentUser, Account: Acc,
			Identities: []model.Identity{{IssuerID: Issuer, Subject: AliceSub}},
			Grants: []model.Permission{
				{Action: "function:get", Resource: AliceRes},
				{Action: "user:*", Resource: AccountRes + "user"},
			}})
		b.PutAgent(model.Agent{ID: BobID, Type: model.AgentClient, Account: Acc,
			Identities: []model.Identity{{IssuerID: Issuer, Subject: "bob"}}})
		b.PutAgent(model.Agent{ID: CarolID, Type: model.AgentUser, Account: Acc,
			Identities: []model.Identity{{IssuerID: Issuer, Subject: "carol"}},
			Grants:     []model.Permission{{Action: "*", Resource: AccountRes}}})
	})
}

// Revision is the revision of the last batch applied.
func (w *World) Revision() int64 { return w.rev }

// Apply applies a batch at the next revision.
func (w *World) Apply(fn func(*state.Batch)) {
	w.T.Helper()
	w.rev++
	b := &state.Batch{Revision: w.rev}
	fn(b)
	if _, err := w.Store.Apply(b); err != nil {
		w.T.Fatal(err)
	}
}

// Tok mints a token for subject signed with the named key (kid = name),
// with the world's clock and audience unless edit overrides them.
func (w *World) Tok(keyName, subject string, edit ...func(*sdk.TokenSpec)) string {
	w.T.Helper()
	spec := sdk.TokenSpec{
		PrivateKey: Key(w.T, keyName), KeyID: keyName, Issuer: Issuer, Subject: subject,
		Audience: Aud, Now: w.Clock.Now(),
	}
	for _, e := range edit {
		e(&spec)
	}
	s, err := sdk.MintToken(spec)
	if err != nil {
		w.T.Fatal(err)
	}
	return s
}

// RawTok signs arbitrary claims and headers with a key and method.
func RawTok(t testing.TB, method jwt.SigningMethod, k any, header map[string]any, claims jwt.MapClaims) string {
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

// WithHeader replaces a token's header, keeping its payload and signature.
func WithHeader(t testing.TB, token, header string) string {
	t.Helper()
	parts := strings.SplitN(token, ".", 2)
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1]
}

// AliceClaims are the claims of a token of alice's, valid for an hour from
// now, as edit changes them (nil: none).
func AliceClaims(now time.Time, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"iss": Issuer, "sub": AliceSub, "aud": Aud, "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

// LoadHook loads the hook whose sources are in dir under policywasm (like
// "examples/tenant") into rt.
func LoadHook(t testing.TB, rt *policywasm.Runtime, dir string) *policywasm.Hook {
	t.Helper()
	h, err := rt.Load(context.Background(), dir, wasmtest.Hook(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Buffer is a bytes.Buffer safe for concurrent writers: a server's log, a
// process's output.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

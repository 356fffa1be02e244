package admin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/sidecar/checkapi"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/hooks"
	"github.com/wardenauthz/warden/sidecar/routes"
	"github.com/wardenauthz/warden/sidecar/state"
	"github.com/wardenauthz/warden/sidecar/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The tests of this package share one embedded etcd; each test works under
// a key prefix of its own.
var etcdClient *clientv3.Client

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-admin-test")
	if err != nil {
		panic(err)
	}
	emb, err := storage.StartEmbedded(storage.EmbeddedConfig{DataDir: dir})
	if err != nil {
		panic(err)
	}
	etcdClient, err = storage.Dial(emb.Endpoint())
	if err != nil {
		panic(err)
	}
	code := m.Run()
	etcdClient.Close()
	emb.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testAcc    = "acc-00000000000000aa"
	otherAcc   = "acc-00000000000000bb"
	rootIssuer = "https://root.test"
	idpIssuer  = "https://idp.test"
)

var prefixes atomic.Int64

// clock is a settable test clock.
type clock = testkit.Clock

var (
	keyOnce sync.Once
	testKey crypto.Signer
)

func signer(t testing.TB) crypto.Signer {
	keyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// env is an admin API over the real store: a replica filling the state, the
// engine, and the API on a loopback server. The store was bootstrapped with
// testAcc and a root client whose identity is {rootIssuer, "root"}; the
// issuer idpIssuer (key "k1") exists for test agents.
type env struct {
	t      *testing.T
	layout storage.Layout
	clock  *clock
	eng    *Engine
	srv    *httptest.Server
	hooks  *hooks.Manager
	root   string // the root client's id
	rootTk string
	reg    *prometheus.Registry
	// routes serves the account's route table "app" from the store.
	routes *routes.StoreSource
	adm    *Server
}

// Engine is the sidecar engine, named here for brevity.
type Engine = sidecar.Engine

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: testkit.NewClock(time.Now().Truncate(time.Second)),
		layout: storage.NewLayout(fmt.Sprintf("/test/%s/%d/", strings.ReplaceAll(t.Name(), "/", "_"), prefixes.Add(1)))}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pemText, err := sdk.PublicKeyPEM(signer(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg := Config{BaseURL: base}
	deps := Deps{Logger: log, Now: e.clock.Now}
	res, err := Bootstrap(ctx, etcdClient, e.layout, cfg, deps, BootstrapOptions{
		Account: testAcc, DataDir: t.TempDir(), Issuer: rootIssuer, Subject: "root", PublicKeyPEM: pemText, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	e.root = res.RootClient
	// A second account, which the root client may also act in.
	if _, err := etcdClient.Put(ctx, e.layout.Account(otherAcc), storage.Encode(storage.AccountRecord{ID: otherAcc})); err != nil {
		t.Fatal(err)
	}
	st := state.New()
	e.eng, err = sidecar.New(st, sidecar.Config{DefaultAccount: testAcc, Audiences: []string{base}},
		sidecar.Deps{Logger: log, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hookRT, err := policywasm.NewRuntime(ctx, policywasm.Config{PoolSize: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.hooks = hooks.New(hooks.Config{Client: etcdClient, Layout: e.layout, Runtime: hookRT, Engine: e.eng, Logger: log})
	e.eng.AwaitHooksWith(e.hooks.WaitRevision)
	go e.hooks.Run(ctx)
	t.Cleanup(func() { cancel(); e.hooks.Close(context.Background()); hookRT.Close(context.Background()) })
	// The front doors' table, as a node with --route-table app serves it.
	e.routes = routes.NewStoreSource(e.layout, testAcc, "app", log, nil)
	go e.routes.Run(ctx)
	rep := storage.NewReplica(storage.ReplicaConfig{Client: etcdClient, Layout: e.layout, State: st, Logger: log, ProgressInterval: 100 * time.Millisecond,
		Followers: map[string]storage.Follower{storage.KindHook: e.hooks, storage.KindRouteTable: e.routes}})
	go rep.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !rep.Status().Ready; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("replica not ready: %+v", rep.Status())
		}
	}
	deps.CheckModule, deps.AwaitHooks, deps.AwaitRoutes = hookRT.Check, e.hooks.WaitRevision, e.routes.WaitRevision
	deps.HookState = e.hooks.HookState
	e.reg = prometheus.NewPedanticRegistry()
	deps.Registerer = e.reg
	adm, err := New(e.eng, etcdClient, e.layout, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	e.adm = adm
	mux := http.NewServeMux()
	checks, err := checkapi.New(e.eng, checkapi.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks.Register(mux)
	adm.Register(mux)
	// Every request the tests make is held to docs/openapi.yaml.
	srv.Config.Handler = contract.Wrap(t, mux)
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv = srv
	e.rootTk = e.token(rootIssuer, "root", nil)
	e.must("POST", "/v1/account/"+testAcc+"/issuer/"+url.PathEscape(idpIssuer), e.rootTk,
		fmt.Sprintf(`{"publicKeys":[{"keyId":"k1","publicKey":%q}]}`, pemText))
	return e
}

// token mints an agent token for (issuer, subject) signed by the test key;
// perms, when not nil, are inline permissions.
func (e *env) token(issuer, subject string, perms []model.Permission) string {
	e.t.Helper()
	tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer(e.t), KeyID: "k1", Issuer: issuer, Subject: subject,
		Audience: e.srv.URL, Now: e.clock.Now(), Permissions: perms})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// response is an HTTP answer.
type response struct {
	status int
	body   string
	header http.Header
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

func (r response) revision(t *testing.T) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.header.Get(RevisionHeader), 10, 64)
	if err != nil {
		t.Fatalf("no %s header in %d %s", RevisionHeader, r.status, r.body)
	}
	return n
}

func (e *env) do(method, path, token, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// must does a request that must succeed.
func (e *env) must(method, path, token, body string) response {
	e.t.Helper()
	r := e.do(method, path, token, body)
	if r.status/100 != 2 {
		e.t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	return r
}

// agent creates a user (or, with kind "client", a client) with an identity
// at idpIssuer for subject and the given grants, returning its id and a
// token for it.
func (e *env) agent(kind, subject string, grants ...model.Permission) (string, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"identities": []model.Identity{{IssuerID: idpIssuer, Subject: subject}},
		"access":     model.Access{Allow: append([]model.Permission{}, grants...)},
	})
	r := e.must("POST", "/v1/account/"+testAcc+"/"+kind, e.rootTk, string(body))
	var rec struct{ ID string }
	r.json(e.t, &rec)
	return rec.ID, e.token(idpIssuer, subject, nil)
}

// storeDump returns every key and value under the test's prefix, to show
// that a refused write changed nothing.
func (e *env) storeDump() map[string]string {
	e.t.Helper()
	resp, err := etcdClient.Get(context.Background(), e.layout.Prefix, clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

func perm(action, resource string) model.Permission {
	return model.Permission{Action: action, Resource: resource}
}

func sdkPEM() (string, error) { return sdk.PublicKeyPEM(testKey.Public()) }

// message is the message of an error response.
func (r response) message() string {
	var b struct{ Message string }
	_ = json.Unmarshal([]byte(r.body), &b)
	return b.Message
}

func withPrefix() clientv3.OpOption { return clientv3.WithPrefix() }

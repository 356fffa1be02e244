package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/admin/admintest"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// The tests and examples of this package share one deployment, and the
// root profile enrolled from its root init token.
var (
	deployment *admintest.Server
	root       *sdk.Profile
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-sdk-test")
	if err != nil {
		panic(err)
	}
	deployment, err = admintest.Start(dir, admintest.Options{})
	if err != nil {
		panic(err)
	}
	root, err = sdk.Enroll(context.Background(), deployment.RootInitToken, sdk.EnrollOptions{})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	deployment.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func rootClient(t *testing.T) *sdk.Client {
	t.Helper()
	c, err := root.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnrolledRoot(t *testing.T) {
	me, err := rootClient(t).Me(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if me.ID != deployment.RootClient || root.ID != me.ID || root.Account != deployment.Account || me.Access == nil || me.Access.Allow[0].Action != "*" {
		t.Fatalf("me %+v, profile %+v", me, root)
	}
	// The init token was single-use.
	_, err = sdk.Enroll(t.Context(), deployment.RootInitToken, sdk.EnrollOptions{})
	if sdk.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("enrolling twice: %v", err)
	}
}

func TestAdminCalls(t *testing.T) {
	ctx := t.Context()
	c := rootClient(t)
	res := "/account/" + deployment.Account + "/"
	pemText, _ := rootPublicPEM()
	iss, rev, err := c.AddIssuer(ctx, model.Issuer{ID: "https://idp.example", PublicKeys: []model.PublicKey{{KeyID: "k1", PublicKey: pemText}}})
	if err != nil || rev == 0 || iss.ID != "https://idp.example" {
		t.Fatalf("add issuer: %+v %d %v", iss, rev, err)
	}
	if _, _, err := c.AddIssuer(ctx, model.Issuer{ID: "https://jwks.example", JSONKeysURL: "https://jwks.example/.well-known/jwks.json"}); err != nil {
		t.Fatal(err)
	}
	if iss, _, err = c.UpdateIssuer(ctx, "https://idp.example", sdk.IssuerUpdate{DisplayName: sdk.String("IdP")}); err != nil || iss.DisplayName != "IdP" || len(iss.PublicKeys) != 1 {
		t.Fatalf("update issuer: %+v %v", iss, err)
	}
	page, err := c.ListIssuers(ctx, sdk.ListOptions{Count: 1})
	if err != nil || len(page.Items) != 1 || page.Next == "" {
		t.Fatalf("list issuers: %+v %v", page, err)
	}
	u, _, err := c.AddUser(ctx, model.User{FirstName: "Ada", PrimaryEmail: "ada@example.com",
		Identities: []model.Identity{{IssuerID: "https://idp.example", Subject: "ada"}},
		Access:     &model.Access{Allow: []model.Permission{{Action: "function:get", Resource: res}}}})
	if err != nil || !model.ValidID(model.UserPrefix, u.ID) {
		t.Fatalf("add user: %+v %v", u, err)
	}
	u, _, err = c.UpdateUser(ctx, u.ID, sdk.AgentUpdate{FirstName: sdk.String(""), LastName: sdk.String("Lovelace")})
	if err != nil || u.FirstName != "" || u.LastName != "Lovelace" || len(u.Identities) != 1 {
		t.Fatalf("update user: %+v %v", u, err)
	}
	users, err := c.ListUsers(ctx, sdk.ListOptions{Name: "love", All: true})
	if err != nil || len(users.Items) != 1 || users.Items[0].Access == nil {
		t.Fatalf("list users: %+v %v", users, err)
	}
	cl, _, err := c.AddClient(ctx, model.Client{DisplayName: "ci", Access: &model.Access{Allow: []model.Permission{
		{Action: "user:*", Resource: res}, {Action: "function:*", Resource: res}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The client enrolls a key of its own and acts with it.
	tok, rev, err := c.InitClient(ctx, cl.ID, sdk.InitOptions{})
	if err != nil || rev == 0 {
		t.Fatal(err)
	}
	ci, err := sdk.Enroll(ctx, tok, sdk.EnrollOptions{})
	if err != nil || ci.ID != cl.ID {
		t.Fatalf("enroll the client: %+v %v", ci, err)
	}
	cc, _ := ci.Client()
	d, err := cc.Check(ctx, "function:put", res+"subscription/s/function/f", 0)
	if err != nil || !d.Allow || d.Agent.ID != cl.ID {
		t.Fatalf("check: %+v %v", d, err)
	}
	// Inline permissions narrow what a token may do.
	narrow, err := ci.Mint(time.Minute, []model.Permission{{Action: "function:get", Resource: res + "subscription/s/"}})
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := sdk.NewClient(sdk.Config{BaseURL: deployment.URL, Token: sdk.StaticToken(narrow)})
	ds, err := nc.CheckBatch(ctx, []model.Permission{{Action: "function:get", Resource: res + "subscription/s/f"}, {Action: "function:put", Resource: res + "subscription/s/f"}}, rev)
	if err != nil || len(ds) != 2 || !ds[0].Allow || ds[1].Allow || ds[1].Status != 403 {
		t.Fatalf("batch with inline permissions: %+v %v", ds, err)
	}
	// The client may manage users, but grant only what it holds.
	_, _, err = cc.AddUser(ctx, model.User{Access: &model.Access{Allow: []model.Permission{{Action: "issuer:get", Resource: res}}}})
	var e *sdk.Error
	if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "is not authorized to grant access to perform the action 'issuer:get'") {
		t.Fatalf("delegation: %v", err)
	}
	if _, err := cc.ListClients(ctx, sdk.ListOptions{}); sdk.StatusOf(err) != 403 {
		t.Fatalf("a route the client lacks: %v", err)
	}
	if _, err := c.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, u.ID); sdk.StatusOf(err) != 404 || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := c.DeleteIssuer(ctx, "https://jwks.example"); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsAndRetries(t *testing.T) {
	// An unreachable deployment names the URL it tried.
	c, _ := sdk.NewClient(sdk.Config{BaseURL: "http://127.0.0.1:1", Account: "acc-0000000000000001", Retries: -1})
	_, err := c.Me(t.Context())
	var ce *sdk.ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cannot reach Warden at http://127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
	if _, err := sdk.NewClient(sdk.Config{BaseURL: "localhost:7800"}); err == nil {
		t.Fatal("a base URL without scheme was accepted")
	}
	// Idempotent calls are retried after a 503; writes are not.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":503,"statusCode":503,"message":"busy"}`)
	}))
	defer srv.Close()
	c, _ = sdk.NewClient(sdk.Config{BaseURL: srv.URL, Account: "acc-0000000000000001", RetryWait: time.Millisecond})
	if _, err := c.GetUser(t.Context(), "usr-0000000000000001"); sdk.StatusOf(err) != 503 || calls.Load() != 3 {
		t.Fatalf("GET: %v after %d calls", err, calls.Load())
	}
	calls.Store(0)
	_, _, err = c.AddUser(t.Context(), model.User{})
	if sdk.StatusOf(err) != 503 || calls.Load() != 1 {
		t.Fatalf("POST: %v after %d calls", err, calls.Load())
	}
	var e *sdk.Error
	if !errors.As(err, &e) || e.Message != "busy" {
		t.Fatalf("message: %v", err)
	}
}

func TestTokenSourceRenews(t *testing.T) {
	long := root.TokenSource(time.Hour)
	a, _ := long(t.Context())
	b, _ := long(t.Context())
	if a != b {
		t.Fatal("a fresh token was not reused")
	}
	short := root.TokenSource(30 * time.Second)
	a, _ = short(t.Context())
	b, _ = short(t.Context())
	if a == b {
		t.Fatal("a token within a minute of expiry was reused")
	}
}

func rootPublicPEM() (string, error) {
	k, err := root.Signer()
	if err != nil {
		return "", err
	}
	return sdk.PublicKeyPEM(k.Public())
}

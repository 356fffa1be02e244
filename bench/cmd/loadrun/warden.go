package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/bench/internal/opabench"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// The model both servers are given: one account, the issuer of the users'
// tokens with one uploaded RS256 key, and users of grantsPerUser grants
// each, as in the in-process benchmarks (the matching grant is the last).
const (
	benchAccount  = "acc-00000000000be4c0"
	adminIssuer   = "https://admin.warden.bench"
	userIssuer    = "https://issuer.warden.bench"
	userKeyID     = "rs256-1"
	users         = 10
	grantsPerUser = 10
	checkAction   = "function:get"
)

func subject(i int) string { return fmt.Sprintf("user-%d", i%users) }
func resource(i int) string {
	return fmt.Sprintf("/account/%s/subscription/sub-%016x/", benchAccount, i%users)
}

// checkResource is what request i asks about: under user i's grants.
func checkResource(i int) string { return resource(i) + "fn/x" }

func grants(i int) []model.Permission {
	g := make([]model.Permission, grantsPerUser)
	for j := range g {
		g[j] = model.Permission{Action: fmt.Sprintf("function:op%d", j), Resource: resource(i)}
	}
	g[grantsPerUser-1] = model.Permission{Action: "function:*", Resource: resource(i)}
	return g
}

// warden is a running `warden serve`, set up for the run.
type warden struct {
	*server
	addr, baseURL string
	diag          string // the diagnostics listener's address
	proxy         string // the reverse proxy's address, with --upstream
	admin         *sdk.Client
}

// startWarden starts the real binary on loopback with a fresh data dir and
// a bootstrap issuer whose key this run holds, so that it can act as the
// root client through the SDK. extra are more flags for warden serve.
func startWarden(ctx context.Context, bin, dir string, extra ...string) (*warden, error) {
	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pemText, err := sdk.PublicKeyPEM(adminKey.Public())
	if err != nil {
		return nil, err
	}
	pemPath := filepath.Join(dir, "admin.pem")
	if err := os.WriteFile(pemPath, []byte(pemText), 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "warden-data"), "--account", benchAccount,
		"--bootstrap-issuer", adminIssuer, "--bootstrap-subject", "root",
		"--bootstrap-public-key", pemPath, "--bootstrap-key-id", "admin"}, extra...)
	srv, err := start("warden", dir, bin, args...)
	if err != nil {
		return nil, err
	}
	addrs, err := srv.listening(ctx, time.Minute)
	if err != nil {
		srv.stop()
		return nil, err
	}
	listen, _ := addrs["listen"].(string)
	diag, _ := addrs["diag_listen"].(string)
	proxy, _ := addrs["proxy_listen"].(string)
	w := &warden{server: srv, addr: listen, baseURL: "http://" + listen, diag: diag, proxy: proxy}
	if err := srv.waitReady(ctx, "http://"+diag+"/readyz", time.Minute); err != nil {
		srv.stop()
		return nil, err
	}
	tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: adminKey, KeyID: "admin", Issuer: adminIssuer, Subject: "root",
		Audience: w.baseURL, Lifetime: 6 * time.Hour})
	if err != nil {
		srv.stop()
		return nil, err
	}
	if w.admin, err = sdk.NewClient(sdk.Config{BaseURL: w.baseURL, Account: benchAccount, Token: sdk.StaticToken(tok)}); err != nil {
		srv.stop()
		return nil, err
	}
	return w, nil
}

// startPopulated starts Warden and gives it the users, whose tokens the
// returned key signs. extra are more flags for warden serve.
func startPopulated(ctx context.Context, bin, dir string, extra ...string) (*warden, *rsa.PrivateKey, error) {
	userKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	w, err := startWarden(ctx, bin, dir, extra...)
	if err != nil {
		return nil, nil, err
	}
	if err := w.populate(ctx, userKey); err != nil {
		w.stop()
		return nil, nil, fmt.Errorf("setting up Warden: %w", err)
	}
	return w, userKey, nil
}

// populate adds the users' issuer, with key's public half, and the users.
func (w *warden) populate(ctx context.Context, key crypto.Signer) error {
	pemText, err := sdk.PublicKeyPEM(key.Public())
	if err != nil {
		return err
	}
	if _, _, err := w.admin.AddIssuer(ctx, model.Issuer{ID: userIssuer, DisplayName: "bench users",
		PublicKeys: []model.PublicKey{{KeyID: userKeyID, PublicKey: pemText}}}); err != nil {
		return fmt.Errorf("adding the issuer: %w", err)
	}
	for i := range users {
		if _, _, err := w.admin.AddUser(ctx, model.User{FirstName: "Bench", LastName: fmt.Sprint(i),
			Identities: []model.Identity{{IssuerID: userIssuer, Subject: subject(i)}},
			Access:     &model.Access{Allow: grants(i)}}); err != nil {
			return fmt.Errorf("adding user %d: %w", i, err)
		}
	}
	return nil
}

// export reads the account's issuers, users and clients back through the
// admin API: the model OPA is given is the one Warden holds.
func (w *warden) export(ctx context.Context) (opabench.Model, error) {
	m := opabench.Model{Account: benchAccount, Audiences: []string{w.baseURL}}
	for next := ""; ; {
		p, err := w.admin.ListIssuers(ctx, sdk.ListOptions{Count: 100, Next: next})
		if err != nil {
			return m, fmt.Errorf("listing issuers: %w", err)
		}
		m.Issuers = append(m.Issuers, p.Items...)
		if next = p.Next; next == "" {
			break
		}
	}
	agent := func(id string, typ model.AgentType, ids []model.Identity, acc *model.Access) model.Agent {
		a := model.Agent{ID: id, Type: typ, Account: benchAccount, Identities: ids}
		if acc != nil {
			a.Grants = acc.Allow
		}
		return a
	}
	users, err := listAll(ctx, w.admin.ListUsers)
	if err != nil {
		return m, fmt.Errorf("listing users: %w", err)
	}
	for _, u := range users {
		m.Agents = append(m.Agents, agent(u.ID, model.AgentUser, u.Identities, u.Access))
	}
	clients, err := listAll(ctx, w.admin.ListClients)
	if err != nil {
		return m, fmt.Errorf("listing clients: %w", err)
	}
	for _, c := range clients {
		m.Agents = append(m.Agents, agent(c.ID, model.AgentClient, c.Identities, c.Access))
	}
	return m, nil
}

// listAll reads every page of a list, whole records included.
func listAll[T any](ctx context.Context, list func(context.Context, sdk.ListOptions) (sdk.Page[T], error)) ([]T, error) {
	var all []T
	for next := ""; ; {
		p, err := list(ctx, sdk.ListOptions{Count: 100, Next: next, All: true})
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if next = p.Next; next == "" {
			return all, nil
		}
	}
}

// putHook registers the tenant example hook in restrict mode.
func (w *warden) putHook(ctx context.Context, module []byte) error {
	_, _, err := w.admin.PutHook(ctx, "tenant", module, sdk.HookOptions{Mode: model.HookRestrict})
	return err
}

func (w *warden) deleteHook(ctx context.Context) error {
	_, err := w.admin.DeleteHook(ctx, "tenant")
	return err
}

// mintFresh mints n tokens, one per request of the fresh-token loads,
// and says how long it took.
func mintFresh(key *rsa.PrivateKey, audience string, n int) ([]string, error) {
	start := time.Now()
	fresh, err := mintTokens(key, audience, n, nil)
	if err == nil {
		progress("minted %d fresh RS256 tokens in %s", len(fresh), since(start))
	}
	return fresh, err
}

// mintTokens mints n RS256 tokens for the users in turn, each distinct (its
// lifetime differs by a second from the last), on every core.
func mintTokens(key *rsa.PrivateKey, audience string, n int, extra jwt.MapClaims) ([]string, error) {
	out := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, runtime.GOMAXPROCS(0))
	workers := runtime.GOMAXPROCS(0)
	now := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				claims := jwt.MapClaims{"iss": userIssuer, "sub": subject(i), "aud": audience,
					"iat": now.Unix(), "exp": now.Add(2*time.Hour + time.Duration(i)*time.Second).Unix()}
				for k, v := range extra {
					claims[k] = v
				}
				t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
				t.Header["kid"] = userKeyID
				s, err := t.SignedString(key)
				if err != nil {
					errs <- fmt.Errorf("minting token %d: %w", i, err)
					return
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// TestCheckDecisions covers every rule of authentication, agent resolution,
// inline permissions and grant matching, each with the status and reason it
// must produce.
func TestCheckDecisions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	now := f.clock.Now()
	rsa1 := testkit.Key(t, "rsa1")
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims { return testkit.AliceClaims(now, edit) }
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }
	inline := func(p ...model.Permission) func(*sdk.TokenSpec) {
		return func(s *sdk.TokenSpec) { s.Permissions = append([]model.Permission{}, p...) }
	}
	valid := f.tok("rsa1", testkit.AliceSub)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name             string
		token            string
		action, resource string
		status           int
		reason           string // a substring of the reason
		agent            string
	}{
		{name: "RS256 allowed", token: valid, action: "function:get", resource: testkit.AliceRes + "fn1", status: 200, reason: "allowed", agent: testkit.AliceID},
		{name: "ES256 allowed", token: f.tok("ec256", testkit.AliceSub), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "ES384 allowed", token: f.tok("ec384", testkit.AliceSub), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "ES512 allowed", token: f.tok("ec521", testkit.AliceSub), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "EdDSA allowed", token: f.tok("ed", testkit.AliceSub), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "PS256 allowed", token: f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Algorithm = "PS256" }), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "RS512 allowed", token: f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Algorithm = "RS512" }), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "wildcard action grant", token: valid, action: "user:add", resource: testkit.AccountRes + "user/usr-1", status: 200, agent: testkit.AliceID},
		{name: "resource outside grant", token: valid, action: "function:get", resource: testkit.AccountRes + "subscription/sub-0000000000000002/", status: 403, reason: "no grant allows 'function:get'", agent: testkit.AliceID},
		{name: "resource prefix is not a segment prefix", token: valid, action: "function:get", resource: strings.TrimSuffix(testkit.AliceRes, "/") + "x/", status: 403, agent: testkit.AliceID},
		{name: "action not granted", token: valid, action: "function:put", resource: testkit.AliceRes, status: 403, reason: "no grant allows", agent: testkit.AliceID},
		{name: "action shorter than grant", token: valid, action: "user", resource: testkit.AccountRes + "user", status: 403, agent: testkit.AliceID},
		{name: "resource without slashes is normalized", token: valid, action: "function:get", resource: strings.Trim(testkit.AliceRes, "/"), status: 200, agent: testkit.AliceID},
		{name: "default account", token: f.tok("rsa1", "carol"), action: "anything", resource: "/elsewhere", status: 403, reason: "no grant allows 'anything' on '/elsewhere/'", agent: testkit.CarolID},
		{name: "client with no grants", token: f.tok("rsa1", "bob"), action: "function:get", resource: testkit.AliceRes, status: 403, agent: testkit.BobID},

		{name: "missing token", token: "", action: "a", resource: "/", status: 401, reason: "missing bearer token"},
		{name: "malformed token", token: "not-a-jwt", action: "a", resource: "/", status: 401, reason: "malformed token"},
		{name: "bad base64", token: "a.b.c", action: "a", resource: "/", status: 401, reason: "malformed token"},
		{name: "token over 16 KiB", token: strings.Repeat("a", MaxTokenSize+1), action: "a", resource: "/", status: 401, reason: "token larger than 16384 bytes"},
		{name: "alg none", token: testkit.RawTok(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "HS256", token: testkit.RawTok(t, jwt.SigningMethodHS256, []byte("secret"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "HS256 keyed with the public PEM", token: testkit.RawTok(t, jwt.SigningMethodHS256, []byte(testkit.PEM(t, rsa1)), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "RS256 with an EC key id", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("ec256"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm does not fit the key type"},
		{name: "ES256 with a P-384 key", token: testkit.WithHeader(t, testkit.RawTok(t, jwt.SigningMethodES384, testkit.Key(t, "ec384"), kid("ec384"), claims(nil)), `{"alg":"ES256","kid":"ec384"}`), action: "a", resource: "/", status: 401, reason: "algorithm does not fit the key type"},
		{name: "EdDSA with an RSA key id", token: testkit.RawTok(t, jwt.SigningMethodEdDSA, testkit.Key(t, "ed"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm does not fit"},
		{name: "no kid", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, nil, claims(nil)), action: "a", resource: "/", status: 401, reason: "no kid"},
		{name: "unknown kid", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("nope"), claims(nil)), action: "a", resource: "/", status: 401, reason: `unknown key id "nope"`},
		{name: "unknown issuer", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), action: "a", resource: "/", status: 401, reason: `unknown issuer "https://evil"`},
		{name: "no iss", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "iss") })), action: "a", resource: "/", status: 401, reason: "no iss"},
		{name: "issuer unknown in the resource's account", token: valid, action: "a", resource: "/account/" + testkit.OtherAcc + "/x", status: 401, reason: "unknown issuer"},
		{name: "unknown account", token: valid, action: "a", resource: "/account/acc-9999999999999999/x", status: 401, reason: "unknown account"},
		{name: "bad signature", token: parts[0] + "." + parts[1] + "." + strings.Split(f.tok("rsa1", "bob"), ".")[2], action: "a", resource: "/", status: 401, reason: "invalid signature"},
		{name: "signed by another key", token: testkit.RawTok(t, jwt.SigningMethodRS256, testkit.Key(t, "rsa2"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "invalid signature"},
		{name: "wrong aud", token: f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Audience = "http://other" }), action: "a", resource: "/", status: 401, reason: "audience is not accepted"},
		{name: "aud array containing ours", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", testkit.Aud} })), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		{name: "no aud", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "aud") })), action: "a", resource: "/", status: 401, reason: "no aud"},
		{name: "no sub", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "sub") })), action: "a", resource: "/", status: 401, reason: "no sub"},
		{name: "no exp", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "exp") })), action: "a", resource: "/", status: 401, reason: "no exp"},
		{name: "malformed exp", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = "soon" })), action: "a", resource: "/", status: 401, reason: "malformed exp"},
		{name: "expired", token: f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Now = now.Add(-2 * time.Hour) }), action: "a", resource: "/", status: 401, reason: "token expired"},
		{name: "expiring now", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = now.Unix() })), action: "a", resource: "/", status: 401, reason: "token expired"},
		{name: "not yet valid", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), action: "a", resource: "/", status: 401, reason: "not valid yet"},
		{name: "unknown identity", token: f.tok("rsa1", "mallory"), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "unknown identity"},

		{name: "inline narrower allows what it names", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function:get", Resource: testkit.AliceRes + "fn1"})), action: "function:get", resource: testkit.AliceRes + "fn1/x", status: 200, agent: testkit.AliceID},
		{name: "inline narrower denies the rest", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function:get", Resource: testkit.AliceRes + "fn1"})), action: "function:get", resource: testkit.AliceRes + "fn2", status: 403, reason: "no grant allows", agent: testkit.AliceID},
		{name: "inline broader action", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function:*", Resource: testkit.AliceRes})), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "not covered by the agent's grants", agent: testkit.AliceID},
		{name: "inline broader resource", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function:get", Resource: testkit.AccountRes})), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "not covered", agent: testkit.AliceID},
		{name: "inline empty list", token: f.tok("rsa1", testkit.AliceSub, inline()), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "no grant allows", agent: testkit.AliceID},
		{name: "inline without allow", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = map[string]any{} })), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "no grant allows", agent: testkit.AliceID},
		{name: "inline not an object", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = "all" })), action: "function:get", resource: testkit.AliceRes, status: 403, reason: "malformed inline permissions", agent: testkit.AliceID},
		{name: "inline allow not an array", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = map[string]any{"allow": "x"} })), action: "function:get", resource: testkit.AliceRes, status: 403, reason: `"allow" is not an array`, agent: testkit.AliceID},
		{name: "inline entry without resource", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) {
			c[DefaultPermissionsClaim] = map[string]any{"allow": []any{map[string]any{"action": "function:get"}}}
		})), action: "function:get", resource: testkit.AliceRes, status: 403, reason: `"allow[0].resource"`, agent: testkit.AliceID},
		// Inline permissions follow the grammar too: a '..' would otherwise
		// narrow to a resource that is not the one it names.
		{name: "inline resource with ..", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function:get", Resource: testkit.AliceRes + "../x/"})), action: "function:get", resource: testkit.AliceRes, status: 403,
			reason: `malformed inline permissions: "allow[0].resource": the resource '` + testkit.AliceRes + `../x/' has a '..' segment`, agent: testkit.AliceID},
		{name: "inline action with a space", token: f.tok("rsa1", testkit.AliceSub, inline(model.Permission{Action: "function: get", Resource: testkit.AliceRes})), action: "function:get", resource: testkit.AliceRes, status: 403,
			reason: `"allow[0].action": the action 'function: get'`, agent: testkit.AliceID},
		// Time claims out of range fail closed: converted blindly, an nbf
		// of 1e19 overflows to the past and passes at once.
		{name: "nbf 1e19", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = 1e19 })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "nbf 9.3e18", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = 9.3e18 })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "nbf negative", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = -1 })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "exp 1e19", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = 1e19 })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed exp claim"},
		{name: "exp a string", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed exp claim"},
		{name: "iat out of range", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["iat"] = 1e300 })), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "malformed iat claim"},
		{name: "nbf with a fraction, past", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = float64(now.Unix()) - 0.5 })), action: "function:get", resource: testkit.AliceRes, status: 200, agent: testkit.AliceID},
		// RFC 7515: an unknown critical extension is refused.
		{name: "crit names b64", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1", "crit": []string{"b64"}, "b64": false}, claims(nil)), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "critical extensions"},
		{name: "crit empty", token: testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1", "crit": []string{}}, claims(nil)), action: "function:get", resource: testkit.AliceRes, status: 401, reason: "critical extensions"},
		// A check in process whose resource breaks the grammar is 400.
		{name: "requested resource with ..", token: f.tok("rsa1", testkit.AliceSub), action: "function:get", resource: testkit.AliceRes + "../x/", status: 400, reason: "has a '..' segment"},
		{name: "requested action with an empty segment", token: f.tok("rsa1", testkit.AliceSub), action: "function:", resource: testkit.AliceRes, status: 400, reason: `"action": the action 'function:' has an empty segment`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := f.check(tc.token, tc.action, tc.resource)
			if d.Status != tc.status || d.Allow != (tc.status == 200) || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %+v, want status %d with reason containing %q", d, tc.status, tc.reason)
			}
			if d.Agent.ID != tc.agent {
				t.Errorf("agent = %q, want %q", d.Agent.ID, tc.agent)
			}
			if d.Allow && d.Grant.Action == "" {
				t.Errorf("allowed without naming the grant: %+v", d)
			}
			if d.Revision != f.Revision() {
				t.Errorf("revision = %d, want %d", d.Revision, f.Revision())
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(d.Reason, tc.token[len(tc.token)-20:]) {
				t.Errorf("reason quotes the token: %q", d.Reason)
			}
			// A second check answers the same, now from the token cache.
			if d2 := f.check(tc.token, tc.action, tc.resource); d2 != d {
				t.Errorf("second check = %+v, first %+v", d2, d)
			}
		})
	}
}

func TestCheckOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		edit   func(*sdk.TokenSpec)
		status int
		reason string
	}{
		{name: "leeway accepts a just-expired token", cfg: Config{Leeway: time.Minute},
			edit: func(s *sdk.TokenSpec) { s.Lifetime = -30 * time.Second }, status: 200},
		{name: "leeway is bounded", cfg: Config{Leeway: time.Minute},
			edit: func(s *sdk.TokenSpec) { s.Lifetime = -2 * time.Minute }, status: 401, reason: "expired"},
		{name: "second audience", cfg: Config{Audiences: []string{testkit.Aud, "api://other"}},
			edit: func(s *sdk.TokenSpec) { s.Audience = "api://other" }, status: 200},
		{name: "custom permissions claim", cfg: Config{PermissionsClaim: "perms"},
			edit: func(s *sdk.TokenSpec) {
				s.PermissionsClaim = "perms"
				s.Permissions = []model.Permission{{Action: "function:put", Resource: testkit.AliceRes}}
			}, status: 403, reason: "not covered"},
		{name: "default claim ignored under a custom name", cfg: Config{PermissionsClaim: "perms"},
			edit: func(s *sdk.TokenSpec) {
				s.Permissions = []model.Permission{{Action: "function:put", Resource: testkit.AliceRes}}
			}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.cfg)
			d := f.check(f.tok("rsa1", testkit.AliceSub, tc.edit), "function:get", testkit.AliceRes)
			if d.Status != tc.status || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %+v, want %d %q", d, tc.status, tc.reason)
			}
		})
	}
}

func TestTokensWithoutExp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{AllowTokensWithoutExp: true})
	tok := testkit.RawTok(t, jwt.SigningMethodES256, testkit.Key(t, "ec256"), map[string]any{"kid": "ec256"},
		jwt.MapClaims{"iss": testkit.Issuer, "sub": testkit.AliceSub, "aud": testkit.Aud})
	if d := f.check(tok, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("token without exp refused: %+v", d)
	}
}

// TestCachedTokenFollowsState proves that decisions are never cached: a
// cached token sees grant changes, identity removal, key changes and
// expiry at once.
func TestCachedTokenFollowsState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", testkit.AliceSub)
	if d := f.check(tok, "function:put", testkit.AliceRes); d.Status != 403 {
		t.Fatalf("before grant: %+v", d)
	}
	// Grant function:put.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: testkit.AliceID, Type: model.AgentUser, Account: testkit.Acc,
			Identities: []model.Identity{{IssuerID: testkit.Issuer, Subject: testkit.AliceSub}},
			Grants:     []model.Permission{{Action: "function:*", Resource: testkit.AliceRes}}})
	})
	if d := f.check(tok, "function:put", testkit.AliceRes); !d.Allow || d.Revision != f.Revision() {
		t.Fatalf("after grant: %+v", d)
	}
	// Drop the identity.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: testkit.AliceID, Type: model.AgentUser, Account: testkit.Acc,
			Grants: []model.Permission{{Action: "function:*", Resource: testkit.AliceRes}}})
	})
	if d := f.check(tok, "function:put", testkit.AliceRes); d.Status != 403 || d.Reason != "unknown identity" {
		t.Fatalf("after identity removal: %+v", d)
	}
	// Move alice's identity to carol's record: same token, other agent.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: testkit.CarolID, Type: model.AgentUser, Account: testkit.Acc,
			Identities: []model.Identity{{IssuerID: testkit.Issuer, Subject: testkit.AliceSub}},
			Grants:     []model.Permission{{Action: "*", Resource: testkit.AccountRes}}})
	})
	if d := f.check(tok, "anything", testkit.AccountRes); !d.Allow || d.Agent.ID != testkit.CarolID {
		t.Fatalf("after identity move: %+v", d)
	}
	// Replace the issuer's keys: the cached token no longer verifies.
	f.apply(func(b *state.Batch) {
		b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, PublicKeys: []model.PublicKey{{KeyID: "rsa1", PublicKey: testkit.PEM(t, testkit.Key(t, "rsa2"))}}})
	})
	if d := f.check(tok, "anything", testkit.AccountRes); d.Status != 401 || d.Reason != "invalid signature" {
		t.Fatalf("after key change: %+v", d)
	}
	// Delete the issuer.
	f.apply(func(b *state.Batch) { b.DeleteIssuer(testkit.Acc, testkit.Issuer) })
	if d := f.check(tok, "anything", testkit.AccountRes); d.Status != 401 || !strings.Contains(d.Reason, "unknown issuer") {
		t.Fatalf("after issuer removal: %+v", d)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("ed", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Lifetime = time.Minute })
	if d := f.check(tok, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("fresh: %+v", d)
	}
	f.clock.Add(time.Minute)
	if d := f.check(tok, "function:get", testkit.AliceRes); d.Status != 401 || d.Reason != "token expired" {
		t.Fatalf("expired while cached: %+v", d)
	}
}

// TestTokenCacheScopedToAccount: a token cached for one account is verified
// again, and fails, in an account whose issuers do not know it.
func TestTokenCacheScopedToAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", testkit.AliceSub)
	if d := f.check(tok, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("home account: %+v", d)
	}
	if d := f.check(tok, "function:get", "/account/"+testkit.OtherAcc+"/"); d.Status != 401 {
		t.Fatalf("other account: %+v", d)
	}
}

// TestCheckCachedDoesNotAllocate guards the cached path's allocation
// budget (the target is at most 4).
func TestCheckCachedDoesNotAllocate(t *testing.T) {
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", testkit.AliceSub)
	f.check(tok, "function:get", testkit.AliceRes)
	allocs := testing.AllocsPerRun(100, func() {
		if d := f.check(tok, "function:get", testkit.AliceRes+"fn1"); !d.Allow {
			t.Fatal(d)
		}
	})
	if allocs > 4 {
		t.Fatalf("cached check allocates %.0f times, budget 4", allocs)
	}
}

// TestDenialClasses: each denial is of its class by errors.Is, the class a
// decision is counted under follows from it, and the reason is the error's
// words.
func TestDenialClasses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	now := f.clock.Now()
	rsa1 := testkit.Key(t, "rsa1")
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims { return testkit.AliceClaims(now, edit) }
	kid := map[string]any{"kid": "rsa1"}
	tests := []struct {
		name     string
		token    string
		action   string
		sentinel error // of Authenticate's error, or of the principal's denial
		class    ReasonClass
		reason   string
	}{
		{"no token", "", "function:get", ErrMissingToken, ClassMissingToken, "missing bearer token"},
		{"expired", f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) { s.Now = now.Add(-2 * time.Hour) }), "function:get", ErrTokenExpired, ClassExpiredToken, "token expired"},
		{"not yet valid", testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "function:get", ErrTokenNotYetValid, ClassExpiredToken, "token not valid yet"},
		{"unknown key id", testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "nope"}, claims(nil)), "function:get", ErrInvalidToken, ClassInvalidToken, `unknown key id "nope"`},
		{"bad signature", testkit.RawTok(t, jwt.SigningMethodRS256, testkit.Key(t, "rsa2"), kid, claims(nil)), "function:get", ErrInvalidToken, ClassInvalidToken, "invalid signature"},
		{"no sub", testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { delete(c, "sub") })), "function:get", ErrInvalidToken, ClassInvalidToken, "token has no sub claim"},
		{"too large", strings.Repeat("a", MaxTokenSize+1), "function:get", ErrInvalidToken, ClassInvalidToken, "token larger than"},
		{"unknown identity", f.tok("rsa1", "mallory"), "function:get", ErrUnknownIdentity, ClassUnknownIdentity, "unknown identity"},
		{"inline wider than the grants", f.tok("rsa1", testkit.AliceSub, func(s *sdk.TokenSpec) {
			s.Permissions = []model.Permission{{Action: "function:*", Resource: testkit.AliceRes}}
		}), "function:get", ErrInlinePermissions, ClassInlinePermissions, "not covered"},
		{"inline malformed", testkit.RawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = "all" })), "function:get", ErrInlinePermissions, ClassInlinePermissions, "malformed inline permissions"},
		{"no grant", f.tok("rsa1", testkit.AliceSub), "function:put", nil, ClassNoGrant, "no grant allows"},
		{"granted", f.tok("rsa1", testkit.AliceSub), "function:get", nil, ClassGranted, "allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := f.eng.Snapshot()
			p, err := f.eng.Authenticate(context.Background(), snap, tc.token, testkit.Acc)
			if err == nil {
				err = p.Denial()
			}
			if tc.sentinel == nil && err != nil || tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v; want one of class %v", err, tc.sentinel)
			}
			d := f.decide(tc.token, tc.action, testkit.AliceRes)
			if class := d.Class; class != tc.class || !strings.Contains(d.Reason, tc.reason) || err != nil && d.Reason != err.Error() {
				t.Fatalf("decision %+v; want class %v with %q", d, tc.class, tc.reason)
			}
		})
	}
}

// TestDecideRequirements: a request is allowed only when every requirement
// is covered; the first one not covered is the reason, and the grant told
// is the one covering the first requirement.
func TestDecideRequirements(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", testkit.AliceSub)
	get := model.Permission{Action: "function:get", Resource: testkit.AliceRes + "fn"}
	addUser := model.Permission{Action: "user:add", Resource: testkit.AccountRes + "user/usr-1"}
	put := model.Permission{Action: "function:put", Resource: testkit.AliceRes + "fn"}
	for _, tc := range []struct {
		name   string
		reqs   []model.Permission
		allow  bool
		reason string
		grant  string
	}{
		{"one covered", []model.Permission{get}, true, "allowed", "function:get"},
		{"two covered", []model.Permission{addUser, get}, true, "allowed", "user:*"},
		{"the second not covered", []model.Permission{get, put}, false, "no grant allows 'function:put'", ""},
		{"the first not covered", []model.Permission{put, get}, false, "no grant allows 'function:put'", ""},
		{"no requirement", nil, false, "no requirement to decide", ""},
	} {
		d := f.eng.Decide(context.Background(), f.store.Snapshot(), tok, tc.reqs, RequestInfo{})
		if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) || d.Grant.Action != tc.grant {
			t.Errorf("%s: %+v", tc.name, d)
		}
	}
}

// TestAuthorizeAfterFailedAuthentication: a principal whose token failed
// is denied 401 with the authentication's reason, and Authenticate and
// Authorize as two steps decide as Decide does.
func TestAuthorizeAfterFailedAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	snap := f.store.Snapshot()
	reqs := []model.Permission{{Action: "function:get", Resource: testkit.AliceRes}}
	p, err := f.eng.Authenticate(context.Background(), snap, "not-a-jwt", testkit.Acc)
	if err == nil || p.Err() != err || p.Agent().ID != "" || p.Permissions() != nil {
		t.Fatalf("principal %+v, error %v", p, err)
	}
	d := f.eng.Authorize(context.Background(), snap, p, reqs, RequestInfo{})
	if d.Allow || d.Status != 401 || d.Reason != "malformed token" || d.Class != ClassInvalidToken {
		t.Fatalf("%+v", d)
	}
	tok := f.tok("rsa1", testkit.AliceSub)
	p, err = f.eng.Authenticate(context.Background(), snap, tok, testkit.Acc)
	if err != nil {
		t.Fatal(err)
	}
	granted := f.eng.metrics.decisions.Value(int(ClassGranted))
	two, one := f.eng.Authorize(context.Background(), snap, p, reqs, RequestInfo{}), f.eng.Decide(context.Background(), snap, tok, reqs, RequestInfo{})
	if !two.Allow || two.Decision != one.Decision || two.Class != one.Class {
		t.Fatalf("two steps %+v, Decide %+v", two, one)
	}
	// Both count their decision, and a dry-run route's under its mode.
	f.eng.Authorize(context.Background(), snap, p, reqs, RequestInfo{DryRun: true})
	if n, dry := f.eng.metrics.decisions.Value(int(ClassGranted)), f.eng.metrics.decisions.Value(int(ClassGranted+numClasses)); n != granted+2 || dry != 1 {
		t.Fatalf("granted counted %d more times, dry-run %d; want 2 and 1", n-granted, dry)
	}
}

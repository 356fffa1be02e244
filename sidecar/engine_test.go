package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	rsa1 := key(t, "rsa1")
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims { return aliceClaims(now, edit) }
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }
	inline := func(p ...model.Permission) func(*sdk.TokenSpec) {
		return func(s *sdk.TokenSpec) { s.Permissions = append([]model.Permission{}, p...) }
	}
	valid := f.tok("rsa1", aliceSub)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name             string
		token            string
		action, resource string
		status           int
		reason           string // a substring of the reason
		agent            string
	}{
		{name: "RS256 allowed", token: valid, action: "function:get", resource: aliceRes + "fn1", status: 200, reason: "allowed", agent: aliceID},
		{name: "ES256 allowed", token: f.tok("ec256", aliceSub), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "ES384 allowed", token: f.tok("ec384", aliceSub), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "ES512 allowed", token: f.tok("ec521", aliceSub), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "EdDSA allowed", token: f.tok("ed", aliceSub), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "PS256 allowed", token: f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) { s.Algorithm = "PS256" }), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "RS512 allowed", token: f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) { s.Algorithm = "RS512" }), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "wildcard action grant", token: valid, action: "user:add", resource: accountRe + "user/usr-1", status: 200, agent: aliceID},
		{name: "resource outside grant", token: valid, action: "function:get", resource: accountRe + "subscription/sub-0000000000000002/", status: 403, reason: "no grant allows 'function:get'", agent: aliceID},
		{name: "resource prefix is not a segment prefix", token: valid, action: "function:get", resource: strings.TrimSuffix(aliceRes, "/") + "x/", status: 403, agent: aliceID},
		{name: "action not granted", token: valid, action: "function:put", resource: aliceRes, status: 403, reason: "no grant allows", agent: aliceID},
		{name: "action shorter than grant", token: valid, action: "user", resource: accountRe + "user", status: 403, agent: aliceID},
		{name: "resource without slashes is normalized", token: valid, action: "function:get", resource: strings.Trim(aliceRes, "/"), status: 200, agent: aliceID},
		{name: "default account", token: f.tok("rsa1", "carol"), action: "anything", resource: "/elsewhere", status: 403, reason: "no grant allows 'anything' on '/elsewhere/'", agent: carolID},
		{name: "client with no grants", token: f.tok("rsa1", "bob"), action: "function:get", resource: aliceRes, status: 403, agent: bobID},

		{name: "missing token", token: "", action: "a", resource: "/", status: 401, reason: "missing bearer token"},
		{name: "malformed token", token: "not-a-jwt", action: "a", resource: "/", status: 401, reason: "malformed token"},
		{name: "bad base64", token: "a.b.c", action: "a", resource: "/", status: 401, reason: "malformed token"},
		{name: "token over 16 KiB", token: strings.Repeat("a", MaxTokenSize+1), action: "a", resource: "/", status: 401, reason: "token larger than 16384 bytes"},
		{name: "alg none", token: rawTok(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "HS256", token: rawTok(t, jwt.SigningMethodHS256, []byte("secret"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "HS256 keyed with the public PEM", token: rawTok(t, jwt.SigningMethodHS256, []byte(pemOf(t, rsa1)), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm not allowed"},
		{name: "RS256 with an EC key id", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("ec256"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm does not fit the key type"},
		{name: "ES256 with a P-384 key", token: withHeader(t, rawTok(t, jwt.SigningMethodES384, key(t, "ec384"), kid("ec384"), claims(nil)), `{"alg":"ES256","kid":"ec384"}`), action: "a", resource: "/", status: 401, reason: "algorithm does not fit the key type"},
		{name: "EdDSA with an RSA key id", token: rawTok(t, jwt.SigningMethodEdDSA, key(t, "ed"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "algorithm does not fit"},
		{name: "no kid", token: rawTok(t, jwt.SigningMethodRS256, rsa1, nil, claims(nil)), action: "a", resource: "/", status: 401, reason: "no kid"},
		{name: "unknown kid", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("nope"), claims(nil)), action: "a", resource: "/", status: 401, reason: `unknown key id "nope"`},
		{name: "unknown issuer", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), action: "a", resource: "/", status: 401, reason: `unknown issuer "https://evil"`},
		{name: "no iss", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "iss") })), action: "a", resource: "/", status: 401, reason: "no iss"},
		{name: "issuer unknown in the resource's account", token: valid, action: "a", resource: "/account/" + otherAcc + "/x", status: 401, reason: "unknown issuer"},
		{name: "unknown account", token: valid, action: "a", resource: "/account/acc-9999999999999999/x", status: 401, reason: "unknown account"},
		{name: "bad signature", token: parts[0] + "." + parts[1] + "." + strings.Split(f.tok("rsa1", "bob"), ".")[2], action: "a", resource: "/", status: 401, reason: "invalid signature"},
		{name: "signed by another key", token: rawTok(t, jwt.SigningMethodRS256, key(t, "rsa2"), kid("rsa1"), claims(nil)), action: "a", resource: "/", status: 401, reason: "invalid signature"},
		{name: "wrong aud", token: f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) { s.Audience = "http://other" }), action: "a", resource: "/", status: 401, reason: "audience is not accepted"},
		{name: "aud array containing ours", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAud} })), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		{name: "no aud", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "aud") })), action: "a", resource: "/", status: 401, reason: "no aud"},
		{name: "no sub", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "sub") })), action: "a", resource: "/", status: 401, reason: "no sub"},
		{name: "no exp", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { delete(c, "exp") })), action: "a", resource: "/", status: 401, reason: "no exp"},
		{name: "malformed exp", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = "soon" })), action: "a", resource: "/", status: 401, reason: "malformed exp"},
		{name: "expired", token: f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) { s.Now = now.Add(-2 * time.Hour) }), action: "a", resource: "/", status: 401, reason: "token expired"},
		{name: "expiring now", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = now.Unix() })), action: "a", resource: "/", status: 401, reason: "token expired"},
		{name: "not yet valid", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), action: "a", resource: "/", status: 401, reason: "not valid yet"},
		{name: "unknown identity", token: f.tok("rsa1", "mallory"), action: "function:get", resource: aliceRes, status: 403, reason: "unknown identity"},

		{name: "inline narrower allows what it names", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function:get", Resource: aliceRes + "fn1"})), action: "function:get", resource: aliceRes + "fn1/x", status: 200, agent: aliceID},
		{name: "inline narrower denies the rest", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function:get", Resource: aliceRes + "fn1"})), action: "function:get", resource: aliceRes + "fn2", status: 403, reason: "no grant allows", agent: aliceID},
		{name: "inline broader action", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function:*", Resource: aliceRes})), action: "function:get", resource: aliceRes, status: 403, reason: "not covered by the agent's grants", agent: aliceID},
		{name: "inline broader resource", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function:get", Resource: accountRe})), action: "function:get", resource: aliceRes, status: 403, reason: "not covered", agent: aliceID},
		{name: "inline empty list", token: f.tok("rsa1", aliceSub, inline()), action: "function:get", resource: aliceRes, status: 403, reason: "no grant allows", agent: aliceID},
		{name: "inline without allow", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = map[string]any{} })), action: "function:get", resource: aliceRes, status: 403, reason: "no grant allows", agent: aliceID},
		{name: "inline not an object", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = "all" })), action: "function:get", resource: aliceRes, status: 403, reason: "malformed inline permissions", agent: aliceID},
		{name: "inline allow not an array", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = map[string]any{"allow": "x"} })), action: "function:get", resource: aliceRes, status: 403, reason: `"allow" is not an array`, agent: aliceID},
		{name: "inline entry without resource", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) {
			c[DefaultPermissionsClaim] = map[string]any{"allow": []any{map[string]any{"action": "function:get"}}}
		})), action: "function:get", resource: aliceRes, status: 403, reason: `"allow[0].resource"`, agent: aliceID},
		// Inline permissions follow the grammar too: a '..' would otherwise
		// narrow to a resource that is not the one it names.
		{name: "inline resource with ..", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function:get", Resource: aliceRes + "../x/"})), action: "function:get", resource: aliceRes, status: 403,
			reason: `malformed inline permissions: "allow[0].resource": the resource '` + aliceRes + `../x/' has a '..' segment`, agent: aliceID},
		{name: "inline action with a space", token: f.tok("rsa1", aliceSub, inline(model.Permission{Action: "function: get", Resource: aliceRes})), action: "function:get", resource: aliceRes, status: 403,
			reason: `"allow[0].action": the action 'function: get'`, agent: aliceID},
		// Time claims out of range fail closed: converted blindly, an nbf
		// of 1e19 overflows to the past and passes at once.
		{name: "nbf 1e19", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = 1e19 })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "nbf 9.3e18", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = 9.3e18 })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "nbf negative", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = -1 })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed nbf claim"},
		{name: "exp 1e19", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = 1e19 })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed exp claim"},
		{name: "exp a string", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed exp claim"},
		{name: "iat out of range", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["iat"] = 1e300 })), action: "function:get", resource: aliceRes, status: 401, reason: "malformed iat claim"},
		{name: "nbf with a fraction, past", token: rawTok(t, jwt.SigningMethodRS256, rsa1, kid("rsa1"), claims(func(c jwt.MapClaims) { c["nbf"] = float64(now.Unix()) - 0.5 })), action: "function:get", resource: aliceRes, status: 200, agent: aliceID},
		// RFC 7515: an unknown critical extension is refused.
		{name: "crit names b64", token: rawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1", "crit": []string{"b64"}, "b64": false}, claims(nil)), action: "function:get", resource: aliceRes, status: 401, reason: "critical extensions"},
		{name: "crit empty", token: rawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "rsa1", "crit": []string{}}, claims(nil)), action: "function:get", resource: aliceRes, status: 401, reason: "critical extensions"},
		// A check in process whose resource breaks the grammar is 400.
		{name: "requested resource with ..", token: f.tok("rsa1", aliceSub), action: "function:get", resource: aliceRes + "../x/", status: 400, reason: "has a '..' segment"},
		{name: "requested action with an empty segment", token: f.tok("rsa1", aliceSub), action: "function:", resource: aliceRes, status: 400, reason: `"action": the action 'function:' has an empty segment`},
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
		{name: "second audience", cfg: Config{Audiences: []string{testAud, "api://other"}},
			edit: func(s *sdk.TokenSpec) { s.Audience = "api://other" }, status: 200},
		{name: "custom permissions claim", cfg: Config{PermissionsClaim: "perms"},
			edit: func(s *sdk.TokenSpec) {
				s.PermissionsClaim = "perms"
				s.Permissions = []model.Permission{{Action: "function:put", Resource: aliceRes}}
			}, status: 403, reason: "not covered"},
		{name: "default claim ignored under a custom name", cfg: Config{PermissionsClaim: "perms"},
			edit: func(s *sdk.TokenSpec) {
				s.Permissions = []model.Permission{{Action: "function:put", Resource: aliceRes}}
			}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.cfg)
			d := f.check(f.tok("rsa1", aliceSub, tc.edit), "function:get", aliceRes)
			if d.Status != tc.status || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %+v, want %d %q", d, tc.status, tc.reason)
			}
		})
	}
}

func TestTokensWithoutExp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{AllowTokensWithoutExp: true})
	tok := rawTok(t, jwt.SigningMethodES256, key(t, "ec256"), map[string]any{"kid": "ec256"},
		jwt.MapClaims{"iss": testIssuer, "sub": aliceSub, "aud": testAud})
	if d := f.check(tok, "function:get", aliceRes); !d.Allow {
		t.Fatalf("token without exp refused: %+v", d)
	}
}

// TestCachedTokenFollowsState proves that decisions are never cached: a
// cached token sees grant changes, identity removal, key changes and
// expiry at once.
func TestCachedTokenFollowsState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", aliceSub)
	if d := f.check(tok, "function:put", aliceRes); d.Status != 403 {
		t.Fatalf("before grant: %+v", d)
	}
	// Grant function:put.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: aliceID, Type: model.AgentUser, Account: testAcc,
			Identities: []model.Identity{{IssuerID: testIssuer, Subject: aliceSub}},
			Grants:     []model.Permission{{Action: "function:*", Resource: aliceRes}}})
	})
	if d := f.check(tok, "function:put", aliceRes); !d.Allow || d.Revision != f.Revision() {
		t.Fatalf("after grant: %+v", d)
	}
	// Drop the identity.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: aliceID, Type: model.AgentUser, Account: testAcc,
			Grants: []model.Permission{{Action: "function:*", Resource: aliceRes}}})
	})
	if d := f.check(tok, "function:put", aliceRes); d.Status != 403 || d.Reason != "unknown identity" {
		t.Fatalf("after identity removal: %+v", d)
	}
	// Move alice's identity to carol's record: same token, other agent.
	f.apply(func(b *state.Batch) {
		b.PutAgent(model.Agent{ID: carolID, Type: model.AgentUser, Account: testAcc,
			Identities: []model.Identity{{IssuerID: testIssuer, Subject: aliceSub}},
			Grants:     []model.Permission{{Action: "*", Resource: accountRe}}})
	})
	if d := f.check(tok, "anything", accountRe); !d.Allow || d.Agent.ID != carolID {
		t.Fatalf("after identity move: %+v", d)
	}
	// Replace the issuer's keys: the cached token no longer verifies.
	f.apply(func(b *state.Batch) {
		b.PutIssuer(testAcc, model.Issuer{ID: testIssuer, PublicKeys: []model.PublicKey{{KeyID: "rsa1", PublicKey: pemOf(t, key(t, "rsa2"))}}})
	})
	if d := f.check(tok, "anything", accountRe); d.Status != 401 || d.Reason != "invalid signature" {
		t.Fatalf("after key change: %+v", d)
	}
	// Delete the issuer.
	f.apply(func(b *state.Batch) { b.DeleteIssuer(testAcc, testIssuer) })
	if d := f.check(tok, "anything", accountRe); d.Status != 401 || !strings.Contains(d.Reason, "unknown issuer") {
		t.Fatalf("after issuer removal: %+v", d)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("ed", aliceSub, func(s *sdk.TokenSpec) { s.Lifetime = time.Minute })
	if d := f.check(tok, "function:get", aliceRes); !d.Allow {
		t.Fatalf("fresh: %+v", d)
	}
	f.clock.Add(time.Minute)
	if d := f.check(tok, "function:get", aliceRes); d.Status != 401 || d.Reason != "token expired" {
		t.Fatalf("expired while cached: %+v", d)
	}
}

// TestTokenCacheScopedToAccount: a token cached for one account is verified
// again, and fails, in an account whose issuers do not know it.
func TestTokenCacheScopedToAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", aliceSub)
	if d := f.check(tok, "function:get", aliceRes); !d.Allow {
		t.Fatalf("home account: %+v", d)
	}
	if d := f.check(tok, "function:get", "/account/"+otherAcc+"/"); d.Status != 401 {
		t.Fatalf("other account: %+v", d)
	}
}

// TestCheckCachedDoesNotAllocate guards the cached path's allocation
// budget (the target is at most 4).
func TestCheckCachedDoesNotAllocate(t *testing.T) {
	f := newFixture(t, Config{})
	tok := f.tok("rsa1", aliceSub)
	f.check(tok, "function:get", aliceRes)
	allocs := testing.AllocsPerRun(100, func() {
		if d := f.check(tok, "function:get", aliceRes+"fn1"); !d.Allow {
			t.Fatal(d)
		}
	})
	if allocs > 4 {
		t.Fatalf("cached check allocates %.0f times, budget 4", allocs)
	}
}

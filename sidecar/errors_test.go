package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// TestDenialClasses: each denial is of its class by errors.Is, the class a
// decision is counted under follows from it, and the reason is the error's
// words.
func TestDenialClasses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	now := f.clock.Now()
	rsa1 := key(t, "rsa1")
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims { return aliceClaims(now, edit) }
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
		{"expired", f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) { s.Now = now.Add(-2 * time.Hour) }), "function:get", ErrTokenExpired, ClassExpiredToken, "token expired"},
		{"not yet valid", rawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "function:get", ErrTokenNotYetValid, ClassExpiredToken, "token not valid yet"},
		{"unknown key id", rawTok(t, jwt.SigningMethodRS256, rsa1, map[string]any{"kid": "nope"}, claims(nil)), "function:get", ErrInvalidToken, ClassInvalidToken, `unknown key id "nope"`},
		{"bad signature", rawTok(t, jwt.SigningMethodRS256, key(t, "rsa2"), kid, claims(nil)), "function:get", ErrInvalidToken, ClassInvalidToken, "invalid signature"},
		{"no sub", rawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { delete(c, "sub") })), "function:get", ErrInvalidToken, ClassInvalidToken, "token has no sub claim"},
		{"too large", strings.Repeat("a", MaxTokenSize+1), "function:get", ErrInvalidToken, ClassInvalidToken, "token larger than"},
		{"unknown identity", f.tok("rsa1", "mallory"), "function:get", ErrUnknownIdentity, ClassUnknownIdentity, "unknown identity"},
		{"inline wider than the grants", f.tok("rsa1", aliceSub, func(s *sdk.TokenSpec) {
			s.Permissions = []model.Permission{{Action: "function:*", Resource: aliceRes}}
		}), "function:get", ErrInlinePermissions, ClassInlinePermissions, "not covered"},
		{"inline malformed", rawTok(t, jwt.SigningMethodRS256, rsa1, kid, claims(func(c jwt.MapClaims) { c[DefaultPermissionsClaim] = "all" })), "function:get", ErrInlinePermissions, ClassInlinePermissions, "malformed inline permissions"},
		{"no grant", f.tok("rsa1", aliceSub), "function:put", nil, ClassNoGrant, "no grant allows"},
		{"granted", f.tok("rsa1", aliceSub), "function:get", nil, ClassGranted, "allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := f.eng.Store().Snapshot()
			p, err := f.eng.Authenticate(context.Background(), snap, tc.token, testAcc)
			if err == nil {
				err = p.Denial()
			}
			if tc.sentinel == nil && err != nil || tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v; want one of class %v", err, tc.sentinel)
			}
			d := f.decide(tc.token, tc.action, aliceRes)
			if class := d.Class; class != tc.class || !strings.Contains(d.Reason, tc.reason) || err != nil && d.Reason != err.Error() {
				t.Fatalf("decision %+v; want class %v with %q", d, tc.class, tc.reason)
			}
		})
	}
}

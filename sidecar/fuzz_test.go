package sidecar

import (
	"github.com/wardenauthz/warden/internal/testkit"
	"strings"
	"testing"
)

// FuzzCheckToken feeds arbitrary bearer tokens to the check path: it never
// panics, never allows a token that was not minted here, and never quotes
// more than a short piece of the token in its reason.
func FuzzCheckToken(f *testing.F) {
	fx := newFixture(f, Config{})
	valid := fx.tok("rsa1", testkit.AliceSub)
	validEd := fx.tok("ed", testkit.AliceSub)
	f.Add(valid)
	f.Add(validEd)
	f.Add(testkit.WithHeader(f, valid, `{"alg":"none","kid":"rsa1"}`))
	f.Add(testkit.WithHeader(f, valid, `{"alg":"HS256","kid":"rsa1"}`))
	f.Add(testkit.WithHeader(f, valid, `{"alg":"RS256","kid":["x"]}`))
	f.Add("e30.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		d := fx.check(token, "function:get", testkit.AliceRes)
		switch d.Status {
		case 200:
			// Only the two seeds are signed; strict base64 decoding rules
			// out re-encodings of them.
			if token != valid && token != validEd {
				t.Fatalf("allowed a token that was not minted: %q", token)
			}
		case 401, 403:
		default:
			t.Fatalf("status %d: %+v", d.Status, d)
		}
		if len(token) > 100 && strings.Contains(d.Reason, token) {
			t.Fatalf("reason quotes the token")
		}
	})
}

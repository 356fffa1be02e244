package sdk_test

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk"
)

// FuzzParseInitToken: whatever is pasted as an init token is either
// refused with an error or yields every claim its enrollment needs.
func FuzzParseInitToken(f *testing.F) {
	for _, c := range []jwt.MapClaims{
		{"agentId": "clt-1", "protocol": "pki", "profile": map[string]any{"account": "acc-1", "baseUrl": "http://x", "issuerId": "i", "subject": "s"}},
		{"agentId": "usr-1", "accountId": "acc-1", "baseUrl": "http://x", "issuerId": "i", "subject": "s"},
		{"protocol": "pki", "profile": "nope"},
		{"agentId": "usr-1", "protocol": "oauth", "profile": map[string]any{"account": "acc-1", "baseUrl": "http://x", "oauth": map[string]any{}}},
	} {
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
		f.Add(tok)
	}
	f.Add("not.a.token")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := sdk.ParseInitToken(token)
		if err != nil {
			if strings.Contains(err.Error(), token) && len(token) > 20 {
				t.Fatalf("the error quotes the token: %v", err)
			}
			return
		}
		// An oauth token names no identity: the access token given at
		// enrollment does.
		if c.AgentID == "" || c.Account == "" || c.BaseURL == "" || !c.OAuth && (c.IssuerID == "" || c.Subject == "") {
			t.Fatalf("accepted %q as %+v", token, c)
		}
	})
}

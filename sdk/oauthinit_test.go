package sdk_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

func initToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestParseOAuthInitToken: an oauth init token names no identity, and
// carries its profile's oauth settings; the claims it lacks are named in
// order.
func TestParseOAuthInitToken(t *testing.T) {
	settings := map[string]any{"tokenUrl": "https://idp.test/token"}
	tok := initToken(t, jwt.MapClaims{"agentId": "usr-1", "protocol": "oauth",
		"profile": map[string]any{"account": "acc-1", "baseUrl": "http://w.test", "oauth": settings}})
	c, err := sdk.ParseInitToken(tok)
	want := sdk.InitClaims{AgentID: "usr-1", Account: "acc-1", BaseURL: "http://w.test", OAuth: true, OAuthSettings: settings}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed %+v %v", c, err)
	}
	_, err = sdk.ParseInitToken(initToken(t, jwt.MapClaims{"protocol": "pki", "profile": map[string]any{}}))
	if err == nil || err.Error() != "the init token lacks agentId, account, baseUrl, issuerId, subject: is it a Warden init token?" {
		t.Fatalf("a pki token without claims: %v", err)
	}
	// Each enrollment function refuses the other's tokens before calling
	// anyone.
	if _, err := sdk.Enroll(t.Context(), tok, sdk.EnrollOptions{}); !errors.Is(err, sdk.ErrOAuthInitToken) {
		t.Fatalf("Enroll with an oauth token: %v", err)
	}
	pki := initToken(t, jwt.MapClaims{"agentId": "usr-1", "protocol": "pki",
		"profile": map[string]any{"account": "acc-1", "baseUrl": "http://w.test", "issuerId": "i", "subject": "s"}})
	if _, err := sdk.EnrollOAuth(t.Context(), pki, "x.y.z", sdk.EnrollOptions{}); err == nil {
		t.Fatal("EnrollOAuth accepted a pki token")
	}
}

func TestAccessTokenIdentity(t *testing.T) {
	id, err := sdk.AccessTokenIdentity(initToken(t, jwt.MapClaims{"iss": "https://idp.test", "sub": "ada"}))
	if err != nil || id != (model.Identity{IssuerID: "https://idp.test", Subject: "ada"}) {
		t.Fatalf("%+v %v", id, err)
	}
	for _, bad := range []string{"nope", initToken(t, jwt.MapClaims{"iss": "https://idp.test"}), initToken(t, jwt.MapClaims{"sub": "ada"})} {
		if _, err := sdk.AccessTokenIdentity(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

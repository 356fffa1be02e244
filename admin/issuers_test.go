package admin

import (
	"fmt"
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/sdk"
)

// TestIssuerGuard: adding an issuer, changing where its keys come from, or
// deleting it requires the caller to cover every grant of every agent with
// an identity at it; otherwise whoever holds issuer rights could sign
// tokens as root. The 400 names the first grant not covered, and nothing
// is written.
func TestIssuerGuard(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	accRes := "/account/" + testAcc + "/"
	_, keysmith := e.agent("user", "keysmith", perm("issuer:*", accRes))
	pemText, err := sdk.PublicKeyPEM(signer(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	keys := fmt.Sprintf(`{"publicKeys":[{"keyId":"mine","publicKey":%q}]}`, pemText)
	// An agent with an identity at an issuer that does not exist yet.
	future := "https://future.warden.test"
	boss := e.must("POST", acc+"/user", e.rootTk, fmt.Sprintf(`{"identities":[{"issuerId":%q,"subject":"boss"}],"access":{"allow":[{"action":"*","resource":%q}]}}`, future, accRes))
	var bossRec struct{ ID string }
	boss.json(t, &bossRec)
	rootPath := acc + "/issuer/" + url.PathEscape(rootIssuer)

	tests := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"rekey root's issuer", "PATCH", rootPath, keysmith, keys, 400,
			"is not authorized to change the keys of issuer '" + rootIssuer + "', at which client '" + e.root + "' has an identity and may perform the action '*' on resource '/'"},
		{"point root's issuer at a key URL", "PATCH", rootPath, keysmith, `{"jsonKeysUrl":"https://keys.example/jwks"}`, 400, "change the keys of issuer"},
		{"delete root's issuer", "DELETE", rootPath, keysmith, "", 400, "delete issuer '" + rootIssuer + "', at which client '" + e.root + "'"},
		{"add an issuer that an identity already names", "POST", acc + "/issuer/" + url.PathEscape(future), keysmith, keys, 400,
			"add issuer '" + future + "', at which user '" + bossRec.ID + "' has an identity and may perform the action '*' on resource '" + accRes + "'"},
		{"rename root's issuer", "PATCH", rootPath, keysmith, `{"displayName":"root's"}`, 200, ""},
		{"add an issuer nobody names", "POST", acc + "/issuer/" + url.PathEscape("https://fresh.warden.test"), keysmith, keys, 200, ""},
		{"root adds the named issuer", "POST", acc + "/issuer/" + url.PathEscape(future), e.rootTk, keys, 200, ""},
	}
	for _, tc := range tests {
		before := e.storeDump()
		r := e.do(tc.method, tc.path, tc.token, tc.body)
		if r.status != tc.status || !strings.Contains(r.body, tc.msg) {
			t.Fatalf("%s: %d %s; want %d saying %q", tc.name, r.status, r.body, tc.status, tc.msg)
		}
		if tc.status != 200 && !maps.Equal(before, e.storeDump()) {
			t.Fatalf("%s: the refused write changed the store", tc.name)
		}
	}
	// The root token still works: its issuer's keys are the bootstrap's.
	if d := e.checkAs(e.rootTk, "function:get"); !d.Allow {
		t.Fatalf("root after the refused writes: %+v", d)
	}
}

// TestIssuerNameFilter: the issuer list's name filter matches displayName
// as a substring without case (the whole of it with exact=true), and pages
// through the matching issuers only.
func TestIssuerNameFilter(t *testing.T) {
	e := newEnv(t)
	pemText, err := sdkPEM()
	if err != nil {
		t.Fatal(err)
	}
	base := "/v1/account/" + testAcc + "/issuer"
	for i, name := range []string{"Example One", "other", "EXAMPLE two", "example three"} {
		e.must("POST", fmt.Sprintf("%s/iss-%d", base, i), e.rootTk, fmt.Sprintf(`{"displayName":%q,"publicKeys":[{"keyId":"k","publicKey":%q}]}`, name, pemText))
	}
	ids := func(query string) []string {
		t.Helper()
		var out []string
		for next := ""; ; {
			q := query
			if next != "" {
				q += "&next=" + next
			}
			var page struct {
				Items []struct{ ID string }
				Next  string
			}
			e.must("GET", base+"?"+q, e.rootTk, "").json(t, &page)
			for _, it := range page.Items {
				out = append(out, it.ID)
			}
			if next = page.Next; next == "" {
				return out
			}
		}
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"name=nomatch", ""},
		{"name=example", "iss-0 iss-2 iss-3"},
		{"name=example&count=1", "iss-0 iss-2 iss-3"},
		{"name=other&exact=true", "iss-1"},
		{"name=othe&exact=true", ""},
	} {
		if got := strings.Join(ids(tc.query), " "); got != tc.want {
			t.Errorf("?%s: %q, want %q", tc.query, got, tc.want)
		}
	}
}

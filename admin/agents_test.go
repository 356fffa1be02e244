package admin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wardenauthz/warden/sdk/model"
)

// TestAgentLifecycle: add, read, patch, delete users and clients, with the
// record shapes Fusebit returns.
func TestAgentLifecycle(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	r := e.must("POST", acc+"/user", e.rootTk, `{"firstName":"Ada","identities":[],"access":{"allow":[]}}`)
	var u struct{ ID string }
	r.json(t, &u)
	if !model.ValidID(model.UserPrefix, u.ID) || r.body != fmt.Sprintf(`{"id":%q,"firstName":"Ada"}`+"\n", u.ID) {
		t.Fatalf("add: %s", r.body)
	}
	rev := r.revision(t)
	if got := e.must("GET", acc+"/user/"+u.ID, e.rootTk, "").body; got != r.body {
		t.Fatalf("get after add: %s", got)
	}
	// PATCH: present fields replace, null clears, absent fields stay.
	r = e.must("PATCH", acc+"/user/"+u.ID, e.rootTk, `{"id":"`+u.ID+`","firstName":null,"lastName":"Lovelace","primaryEmail":"ada@example.com",
		"identities":[{"issuerId":"`+idpIssuer+`","subject":"ada"}],"access":{"allow":[{"action":"function:get","resource":"account/`+testAcc+`/x"}]}}`)
	want := fmt.Sprintf(`{"id":%q,"lastName":"Lovelace","primaryEmail":"ada@example.com","identities":[{"issuerId":%q,"subject":"ada"}],"access":{"allow":[{"action":"function:get","resource":"/account/%s/x/"}]}}`+"\n",
		u.ID, idpIssuer, testAcc)
	if r.body != want {
		t.Fatalf("patch:\n got %s\nwant %s", r.body, want)
	}
	if r.revision(t) <= rev {
		t.Fatal("the revision did not grow")
	}
	// The new identity works for checks at once: writes wait for this
	// node's replica.
	d := e.eng.Check(t.Context(), e.token(idpIssuer, "ada", nil), "function:get", "/account/"+testAcc+"/x/y")
	if !d.Allow || d.Agent.ID != u.ID {
		t.Fatalf("check after patch: %+v", d)
	}
	// Replacing identities frees the old one for others.
	e.must("PATCH", acc+"/user/"+u.ID, e.rootTk, `{"identities":[{"issuerId":"`+idpIssuer+`","subject":"ada2"}]}`)
	other, _ := e.agent("client", "ada")
	if !model.ValidID(model.ClientPrefix, other) {
		t.Fatal("the freed identity was not reusable")
	}
	if d := e.eng.Check(t.Context(), e.token(idpIssuer, "ada", nil), "function:get", "/account/"+testAcc+"/x/y"); d.Allow || d.Agent.ID != other {
		t.Fatalf("the old identity still resolves to the user: %+v", d)
	}
	// Delete frees the identities too.
	r = e.do("DELETE", acc+"/user/"+u.ID, e.rootTk, "")
	if r.status != 204 || r.body != "" {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r.revision(t)
	if r := e.do("GET", acc+"/user/"+u.ID, e.rootTk, ""); r.status != 404 {
		t.Fatalf("get after delete: %d", r.status)
	}
	if r := e.do("DELETE", acc+"/user/"+u.ID, e.rootTk, ""); r.status != 404 {
		t.Fatalf("second delete: %d", r.status)
	}
	e.agent("user", "ada2")

	// A client has a displayName and no user fields.
	r = e.must("POST", acc+"/client", e.rootTk, `{"displayName":"ci"}`)
	var c struct{ ID string }
	r.json(t, &c)
	if r.body != fmt.Sprintf(`{"id":%q,"displayName":"ci"}`+"\n", c.ID) {
		t.Fatalf("client: %s", r.body)
	}
	// /me returns the caller's own record.
	var me struct {
		ID         string
		Identities []model.Identity
	}
	e.must("GET", acc+"/me", e.rootTk, "").json(t, &me)
	if me.ID != e.root || len(me.Identities) != 1 || me.Identities[0].IssuerID != rootIssuer {
		t.Fatalf("me: %+v", me)
	}
}

// TestDelegation: a caller may grant what its effective permissions cover,
// inline permissions included, and nothing more.
func TestDelegation(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	res := "/account/" + testAcc + "/"
	mgr, mgrTk := e.agent("user", "mgr", perm("user:*", res), perm("function:*", res+"sub/s1/"))
	grant := func(tok, action, resource string) response {
		return e.do("POST", acc+"/user", tok, fmt.Sprintf(`{"access":{"allow":[{"action":%q,"resource":%q}]}}`, action, resource))
	}
	if r := grant(mgrTk, "function:get", res+"sub/s1/f1"); r.status != 200 {
		t.Fatalf("a narrower grant: %d %s", r.status, r.body)
	}
	if r := grant(mgrTk, "function:*", res+"sub/s1"); r.status != 200 {
		t.Fatalf("an equal grant: %d %s", r.status, r.body)
	}
	if r := grant(mgrTk, "function:get", res+"sub/s2/"); r.status != 400 || !strings.Contains(r.body, "user '"+mgr+"' is not authorized to grant access to perform the action 'function:get' on resource '"+res+"sub/s2/'") {
		t.Fatalf("a wider grant: %d %s", r.status, r.body)
	}
	// Inline permissions narrow what the caller may delegate.
	narrow := e.token(idpIssuer, "mgr", []model.Permission{perm("user:add", res), perm("function:get", res+"sub/s1/")})
	if r := grant(narrow, "function:get", res+"sub/s1/"); r.status != 200 {
		t.Fatalf("within the inline permissions: %d %s", r.status, r.body)
	}
	if r := grant(narrow, "function:put", res+"sub/s1/"); r.status != 400 {
		t.Fatalf("outside the inline permissions: %d %s", r.status, r.body)
	}
	// The guard: a caller covering every grant of the target may change its
	// identities and mint init tokens for it.
	target, _ := e.agent("user", "target", perm("function:get", res+"sub/s1/"))
	if r := e.do("PATCH", acc+"/user/"+target, mgrTk, `{"identities":[{"issuerId":"`+idpIssuer+`","subject":"target2"}]}`); r.status != 200 {
		t.Fatalf("covered identity change: %d %s", r.status, r.body)
	}
	if r := e.do("POST", acc+"/user/"+target+"/init", mgrTk, `{}`); r.status != 200 {
		t.Fatalf("covered init: %d %s", r.status, r.body)
	}
	// Keeping the same identities needs no guard.
	strong, _ := e.agent("user", "strong", perm("*", res))
	if r := e.do("PATCH", acc+"/user/"+strong, mgrTk, `{"firstName":"S","identities":[{"issuerId":"`+idpIssuer+`","subject":"strong"}]}`); r.status != 200 {
		t.Fatalf("unchanged identities: %d %s", r.status, r.body)
	}
}

// TestIdentityUniqueUnderConcurrency: of many concurrent creates of the
// same identity, exactly one wins.
func TestIdentityUniqueUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	const n = 16
	var wg sync.WaitGroup
	statuses := make([]int, n)
	body := `{"identities":[{"issuerId":"` + idpIssuer + `","subject":"contested"}]}`
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := "user"
			if i%2 == 1 {
				kind = "client"
			}
			statuses[i] = e.do("POST", "/v1/account/"+testAcc+"/"+kind, e.rootTk, body).status
		}()
	}
	wg.Wait()
	wins := 0
	for _, s := range statuses {
		switch s {
		case 200:
			wins++
		case 400:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates won: %v", wins, statuses)
	}
	found := 0
	for _, kind := range []string{"user", "client"} {
		var l struct{ Items []json.RawMessage }
		e.must("GET", "/v1/account/"+testAcc+"/"+kind+"?issuerId="+url.QueryEscape(idpIssuer)+"&subject=contested", e.rootTk, "").json(t, &l)
		found += len(l.Items)
	}
	if found != 1 {
		t.Fatalf("%d agents hold the identity", found)
	}
}

// TestLists: paging with opaque cursors, filters, summaries and include=all.
func TestLists(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	names := []string{"Ann Smith", "Bob Smith", "Cid Jones", "Dee Smithers", "Eve Brown"}
	ids := map[string]string{}
	for i, n := range names {
		first, last, _ := strings.Cut(n, " ")
		body := fmt.Sprintf(`{"firstName":%q,"lastName":%q,"primaryEmail":"%s@Example.com","identities":[{"issuerId":%q,"subject":"s%d"}],"access":{"allow":[{"action":"function:get","resource":"/x"}]}}`,
			first, last, strings.ToLower(first), idpIssuer, i)
		var u struct{ ID string }
		e.must("POST", acc+"/user", e.rootTk, body).json(t, &u)
		ids[n] = u.ID
	}
	type item struct {
		ID, FirstName, LastName, PrimaryEmail string
		Identities                            []model.Identity
		Access                                *model.Access
	}
	type page struct {
		Items []item
		Next  *string
	}
	list := func(query string) page {
		t.Helper()
		var p page
		r := e.must("GET", acc+"/user?"+query, e.rootTk, "")
		r.json(t, &p)
		if strings.Contains(r.body, "null") {
			t.Fatalf("a list carries null: %s", r.body)
		}
		return p
	}
	// Pages of 2 cover all five users once each, in id order, and the last
	// page has no next.
	var seen []string
	q := "count=2"
	for pages := 0; ; pages++ {
		p := list(q)
		for _, it := range p.Items {
			seen = append(seen, it.ID)
			if it.Identities != nil || it.Access != nil {
				t.Fatalf("a summary carries identities or access: %+v", it)
			}
		}
		if p.Next == nil {
			if pages != 2 || len(p.Items) != 1 {
				t.Fatalf("last page %d has %d items", pages, len(p.Items))
			}
			break
		}
		q = "count=2&next=" + url.QueryEscape(*p.Next)
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("not in id order: %v", seen)
		}
	}
	if p := list("count=0"); len(p.Items) != 5 || p.Next != nil {
		t.Fatalf("count=0 is the default page: %d items", len(p.Items))
	}
	if p := list("count=1000"); len(p.Items) != 5 {
		t.Fatalf("count is clamped, not refused: %d", len(p.Items))
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"name=smith", []string{"Ann Smith", "Bob Smith", "Dee Smithers"}},
		{"name=SMITH&exact=true", nil},
		{"name=bob%20smith&exact=true", []string{"Bob Smith"}},
		{"email=example.COM", names},
		{"email=cid@example.com&exact=true", []string{"Cid Jones"}},
		{"issuerId=" + url.QueryEscape(idpIssuer) + "&subject=s4", []string{"Eve Brown"}},
		{"issuerId=" + url.QueryEscape(idpIssuer), names},
		{"issuerId=nobody", nil},
	}
	for _, tc := range tests {
		p := list(tc.query)
		got := map[string]bool{}
		for _, it := range p.Items {
			got[it.ID] = true
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d items, want %v", tc.query, len(got), tc.want)
		}
		for _, n := range tc.want {
			if !got[ids[n]] {
				t.Fatalf("%s: %s missing", tc.query, n)
			}
		}
	}
	p := list("include=all&subject=s0&issuerId=" + url.QueryEscape(idpIssuer))
	if len(p.Items) != 1 || p.Items[0].Access == nil || p.Items[0].Access.Allow[0].Resource != "/x/" || len(p.Items[0].Identities) != 1 {
		t.Fatalf("include=all: %+v", p.Items)
	}
	var empty struct{ Items []item }
	r := e.must("GET", acc+"/client?name=none", e.rootTk, "")
	r.json(t, &empty)
	if r.body != `{"items":[]}`+"\n" {
		t.Fatalf("an empty list: %s", r.body)
	}
}

// TestFusebitNames: an email is any non-empty string, as in Fusebit, and a
// name field present as null clears it on PATCH.
func TestFusebitNames(t *testing.T) {
	e := newEnv(t)
	var u struct {
		ID           string
		FirstName    string
		PrimaryEmail string
	}
	e.must("POST", "/v1/account/"+testAcc+"/user", e.rootTk, `{"firstName":"Ada","primaryEmail":"ada at example"}`).json(t, &u)
	if u.PrimaryEmail != "ada at example" {
		t.Fatalf("the email came back as %q", u.PrimaryEmail)
	}
	var after struct{ FirstName, PrimaryEmail string }
	e.must("PATCH", "/v1/account/"+testAcc+"/user/"+u.ID, e.rootTk, `{"firstName":null}`).json(t, &after)
	if after.FirstName != "" || after.PrimaryEmail != "ada at example" {
		t.Fatalf("after clearing the first name: %+v", after)
	}
}

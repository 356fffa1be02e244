package admin

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/sdk/model"
)

// TestBadInput: every kind of bad input gets a precise 400, 403, 404 or 413
// naming what was wrong, and leaves the store exactly as it was.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	accRes := "/account/" + testAcc + "/"
	alice, aliceTk := e.agent("user", "alice", perm("user:*", accRes), perm("issuer:get", accRes), perm("function:get", accRes+"sub/s1/"))
	boss, _ := e.agent("user", "boss", perm("*", accRes))
	weak, weakTk := e.agent("client", "weak", perm("user:add", accRes), perm("user:update", accRes), perm("user:init", accRes))
	goodPEM := strings.TrimSpace(mustPEM(t))
	key := func(id string) string { return fmt.Sprintf(`{"keyId":%q,"publicKey":%q}`, id, goodPEM) }
	widening := e.token(idpIssuer, "alice", []model.Permission{perm("*", "/")})

	tests := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string // a substring of the message
	}{
		// The order of checks: malformed path ids, then authorization,
		// then the body.
		{"malformed account id", "GET", "/v1/account/acc-XYZ/user", "", "", 400, `=accountId: "accountId" with value "acc-XYZ" fails to match the required pattern: /^acc-[a-f0-9]{16}$/`},
		{"malformed user id", "GET", acc + "/user/usr-123", e.rootTk, "", 400, `"userId" with value "usr-123" fails to match the required pattern: /^usr-[a-f0-9]{16}$/`},
		{"client id on the user route", "GET", acc + "/user/" + weak, e.rootTk, "", 400, `"userId"`},
		{"malformed id before authorization", "PATCH", acc + "/client/nope", "", "{", 400, `"clientId"`},
		{"no token", "GET", acc + "/user", "", "", 403, "Unauthorized"},
		{"not a token", "GET", acc + "/user", "abc", "", 403, "Unauthorized"},
		{"unknown identity", "GET", acc + "/user", e.token(idpIssuer, "nobody", nil), "", 403, "Unauthorized"},
		{"unknown account", "GET", "/v1/account/acc-00000000000000cc/user", e.rootTk, "", 403, "Unauthorized"},
		{"missing permission", "GET", acc + "/client", aliceTk, "", 403, "Unauthorized"},
		{"widening inline permissions", "GET", acc + "/user", widening, "", 403, "Unauthorized"},
		{"authorization before the body", "POST", acc + "/issuer/x", aliceTk, "{", 403, "Unauthorized"},
		{"missing user", "GET", acc + "/user/usr-0000000000000999", e.rootTk, "", 404, "The user 'usr-0000000000000999' does not exist"},
		{"missing issuer", "PATCH", acc + "/issuer/nope", e.rootTk, `{"displayName":"x"}`, 404, "=The issuer 'nope' is not associated with the account"},
		{"missing issuer on GET", "GET", acc + "/issuer/nope", e.rootTk, "", 404, "=The issuer 'nope' is not associated with the account"},
		{"missing issuer on DELETE", "DELETE", acc + "/issuer/nope", e.rootTk, "", 404, "=The issuer 'nope' is not associated with the account"},

		// Bodies.
		{"not JSON", "POST", acc + "/user", e.rootTk, `{"firstName":`, 400, "not a valid JSON object"},
		{"not an object", "POST", acc + "/user", e.rootTk, `[1]`, 400, "not a valid JSON object"},
		{"a field of the wrong type", "POST", acc + "/user", e.rootTk, `{"firstName":5}`, 400, `"firstName" must be a string`},
		{"an unknown field", "POST", acc + "/user", e.rootTk, `{"nickname":"x"}`, 400, `"nickname" is not allowed`},
		{"a client field on a user", "POST", acc + "/user", e.rootTk, `{"displayName":"x"}`, 400, `"displayName" is not allowed`},
		{"an id in a POST body", "POST", acc + "/user", e.rootTk, `{"id":"usr-0000000000000001"}`, 400, `"id" is not allowed`},
		{"a PATCH id differing from the URL", "PATCH", acc + "/user/" + alice, e.rootTk, `{"id":"usr-0000000000000001"}`, 400, "=The userId in the body 'usr-0000000000000001' does not match the userId in the URL '" + alice + "'"},
		{"a client PATCH id differing from the URL", "PATCH", acc + "/client/" + weak, e.rootTk, `{"id":"clt-0000000000000001"}`, 400, "=The clientId in the body 'clt-0000000000000001' does not match the clientId in the URL '" + weak + "'"},
		{"an issuer PATCH id differing from the URL", "PATCH", acc + "/issuer/" + url.PathEscape(idpIssuer), e.rootTk, `{"id":"other"}`, 400, "=The issuerId in the body 'other' does not match the issuerId in the URL '" + idpIssuer + "'"},
		{"an empty first name", "POST", acc + "/user", e.rootTk, `{"firstName":""}`, 400, `="firstName" is not allowed to be empty`},
		{"an empty last name on PATCH", "PATCH", acc + "/user/" + alice, e.rootTk, `{"lastName":""}`, 400, `="lastName" is not allowed to be empty`},
		{"an empty email", "POST", acc + "/user", e.rootTk, `{"primaryEmail":""}`, 400, `="primaryEmail" is not allowed to be empty`},
		{"an empty display name on PATCH", "PATCH", acc + "/client/" + weak, e.rootTk, `{"displayName":""}`, 400, `="displayName" is not allowed to be empty`},
		{"access without allow", "POST", acc + "/user", e.rootTk, `{"access":{}}`, 400, `="allow" is required`},
		{"an unknown key inside an identity", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":"i","subject":"s","id":"x"}]}`, 400, `="id" is not allowed`},
		{"identities not an array", "POST", acc + "/user", e.rootTk, `{"identities":{}}`, 400, `"identities" must be an array`},
		{"identity without subject", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":"i"}]}`, 400, `="subject" is required`},
		{"identity with a control character", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":"i\u0000","subject":"s"}]}`, 400, `="issuerId" must not contain control characters`},
		{"identity duplicated in the body", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":"i","subject":"s"},{"issuerId":"i","subject":"s"}]}`, 400, `"identities[1]" contains a duplicate value`},
		{"grant without action", "POST", acc + "/client", e.rootTk, `{"access":{"allow":[{"resource":"/"}]}}`, 400, `="action" is required`},
		{"grant with a segment after *", "POST", acc + "/client", e.rootTk, `{"access":{"allow":[{"action":"*:get","resource":"/"}]}}`, 400, `has segments after '*'`},
		// The grammar of grants: each of these would store a grant that
		// never matches, or worse.
		{"grant action with a space", "PATCH", acc + "/user/" + alice, e.rootTk, grant("fun ction:get", accRes), 400, `"action": the action 'fun ction:get' has the segment 'fun ction'`},
		{"grant action ending in a colon", "PATCH", acc + "/user/" + alice, e.rootTk, grant("function:", accRes), 400, `"action": the action 'function:' has an empty segment`},
		{"grant action with an empty segment", "PATCH", acc + "/user/" + alice, e.rootTk, grant("function::get", accRes), 400, `"action": the action 'function::get' has an empty segment`},
		{"grant resource with ..", "PATCH", acc + "/user/" + alice, e.rootTk, grant("function:get", "/account/../"), 400, `"resource": the resource '/account/../' has a '..' segment`},
		{"grant resource with a template", "PATCH", acc + "/user/" + alice, e.rootTk, grant("function:get", "/account/{{accountId}}/"), 400, `"resource": the resource '/account/{{accountId}}/' holds '{{'`},
		{"grant resource with a space", "POST", acc + "/client", e.rootTk, grant("function:get", "/account/a b/"), 400, `"resource": the resource '/account/a b/' holds white space`},
		{"grant resource with an empty segment", "POST", acc + "/client", e.rootTk, grant("function:get", "/account//x/"), 400, `"resource": the resource '/account//x/' has an empty segment`},
		{"grant resource with a dot", "POST", acc + "/client", e.rootTk, grant("function:get", "/account/./x/"), 400, `"resource": the resource '/account/./x/' has a '.' segment`},
		// Null is not a value for a required field: read as absent it
		// would store an identity or a grant with an empty half.
		{"identity with a null issuer", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":null,"subject":"s"}]}`, 400, `="issuerId" must be a string`},
		{"identity with a null subject", "PATCH", acc + "/user/" + alice, e.rootTk, `{"identities":[{"issuerId":"i","subject":null}]}`, 400, `="subject" must be a string`},
		{"grant with a null action", "POST", acc + "/client", e.rootTk, `{"access":{"allow":[{"action":null,"resource":"/"}]}}`, 400, `="action" must be a string`},
		{"grant with a null resource", "POST", acc + "/client", e.rootTk, `{"access":{"allow":[{"action":"*","resource":null}]}}`, 400, `="resource" must be a string`},
		{"every problem at once", "POST", acc + "/user", e.rootTk, `{"firstName":1,"lastName":2}`, 400, `"firstName" must be a string; "lastName" must be a string`},

		// Issuers.
		{"issuer with both key sources", "POST", acc + "/issuer/x", e.rootTk, `{"jsonKeysUrl":"https://k.test/jwks","publicKeys":[` + key("a") + `]}`, 400, "=The issuer 'x' can not have both public keys and a json keys URL"},
		{"issuer with neither", "POST", acc + "/issuer/x", e.rootTk, `{"displayName":"x"}`, 400, "=The issuer 'x' must have at least one public key or a json keys URL"},
		{"issuer PATCH clearing both", "PATCH", acc + "/issuer/" + url.PathEscape(idpIssuer), e.rootTk, `{"publicKeys":null}`, 400, "=The issuer '" + idpIssuer + "' must have at least one public key or a json keys URL"},
		{"issuer key without keyId", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[{"publicKey":"` + strings.ReplaceAll(goodPEM, "\n", `\n`) + `"}]}`, 400, `="keyId" is required`},
		{"issuer key with a null keyId", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[{"keyId":null,"publicKey":"` + strings.ReplaceAll(goodPEM, "\n", `\n`) + `"}]}`, 400, `="keyId" must be a string`},
		{"issuer key with a null PEM", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[{"keyId":"a","publicKey":null}]}`, 400, `="publicKey" must be a string`},
		{"issuer with no keys", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[]}`, 400, `"publicKeys" must contain at least 1 items`},
		{"issuer with four keys", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[` + key("a") + "," + key("b") + "," + key("c") + "," + key("d") + `]}`, 400, `"publicKeys" must contain less than or equal to 3 items`},
		{"issuer with duplicate key ids", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[` + key("a") + "," + key("a") + `]}`, 400, `"keyId" 'a' is a duplicate`},
		{"issuer with PEM that does not parse", "POST", acc + "/issuer/x", e.rootTk, `{"publicKeys":[{"keyId":"a","publicKey":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}`, 400, `"publicKey" is not a valid public key`},
		{"issuer with http key URL", "POST", acc + "/issuer/x", e.rootTk, `{"jsonKeysUrl":"http://k.test/jwks"}`, 400, `"jsonKeysUrl" must be an https:// URL`},
		{"issuer with a key URL that is no URL", "POST", acc + "/issuer/x", e.rootTk, `{"jsonKeysUrl":"ftp:/x"}`, 400, `"jsonKeysUrl" must be a valid https:// URL`},
		{"issuer that exists", "POST", acc + "/issuer/" + url.PathEscape(idpIssuer), e.rootTk, `{"publicKeys":[` + key("a") + `]}`, 400, "The issuer 'https://idp.test' already exists"},
		{"issuer body id differing", "POST", acc + "/issuer/x", e.rootTk, `{"id":"x","publicKeys":[` + key("a") + `]}`, 400, `="id" is not allowed`},

		// Identities, delegation and the escalation guards.
		{"a duplicate identity", "POST", acc + "/user", e.rootTk, `{"identities":[{"issuerId":"` + idpIssuer + `","subject":"alice"}]}`, 400, "=The identity with issuer 'https://idp.test' and subject 'alice' is already associated with a user or client"},
		{"a duplicate identity on PATCH", "PATCH", acc + "/user/" + boss, e.rootTk, `{"identities":[{"issuerId":"` + idpIssuer + `","subject":"alice"}]}`, 400, "already associated"},
		{"a grant beyond the caller's", "POST", acc + "/user", weakTk, `{"access":{"allow":[{"action":"function:get","resource":"/account/` + testAcc + `/x"}]}}`, 400,
			"The client '" + weak + "' is not authorized to grant access to perform the action 'function:get' on resource '/account/" + testAcc + "/x'"},
		{"taking over a stronger agent through its identities", "PATCH", acc + "/user/" + boss, weakTk, `{"identities":[{"issuerId":"` + idpIssuer + `","subject":"weak2"}]}`, 400,
			"The client '" + weak + "' is not authorized to change the identities of user '" + boss + "', which may perform the action '*' on resource '" + accRes + "'"},
		{"taking over a stronger agent through an init token", "POST", acc + "/user/" + boss + "/init", weakTk, `{}`, 400,
			"The client '" + weak + "' is not authorized to issue an init token for user '" + boss + "'"},
		{"init with an unknown protocol", "POST", acc + "/user/" + alice + "/init", e.rootTk, `{"protocol":"saml"}`, 400, `"protocol" must be one of [pki, oauth]`},
		{"init profile without pki", "POST", acc + "/user/" + alice + "/init", e.rootTk, `{"profile":{}}`, 400, `"profile" is only allowed with "protocol"`},

		// Lists.
		{"a subject filter without issuerId", "GET", acc + "/user?subject=alice", e.rootTk, "", 400, "=The 'subject' filter 'alice' can not be specified without the 'issuerId' filter"},
		{"a subject filter without issuerId on clients", "GET", acc + "/client?subject=x", e.rootTk, "", 400, "=The 'subject' filter 'x' can not be specified without the 'issuerId' filter"},
		{"a bad next", "GET", acc + "/user?next=zzz", e.rootTk, "", 400, "The 'next' value 'zzz' is invalid"},
		{"an issuer cursor on the user list", "GET", acc + "/user?next=" + encodeCursor(cursorIssuers, "x"), e.rootTk, "", 400, "is invalid"},
		{"a negative count", "GET", acc + "/user?count=-5", e.rootTk, "", 400, "The limit value '-5' is invalid; must be a positive number"},
		{"a count that is no number", "GET", acc + "/user?count=ten", e.rootTk, "", 400, "The limit value 'ten' is invalid"},

		// Size.
		{"an oversized body", "POST", acc + "/user", e.rootTk, `{"firstName":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "larger than 1048576 bytes"},
	}
	// The full path of the field a message names by its last key, in the
	// body's fields.
	paths := map[string]string{
		"identity without subject":          "identities[0].subject",
		"identity with a control character": "identities[0].issuerId",
		"grant without action":              "access.allow[0].action",
		"grant action with a space":         "access.allow[0].action",
		"grant resource with ..":            "access.allow[0].resource",
		"an unknown key inside an identity": "identities[0].id",
		"access without allow":              "access.allow",
		"an empty first name":               "firstName",
		"issuer with duplicate key ids":     "publicKeys[1].keyId",
		"issuer key without keyId":          "publicKeys[0].keyId",
		"identity with a null issuer":       "identities[0].issuerId",
		"grant with a null resource":        "access.allow[0].resource",
		"issuer key with a null PEM":        "publicKeys[0].publicKey",
		"an id in a POST body":              "id",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.storeDump()
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			var body struct {
				Status, StatusCode int
				Message            string
				Fields             []struct{ Path, Message string }
			}
			r.json(t, &body)
			exact, whole := strings.CutPrefix(tc.msg, "=")
			if r.status != tc.status || body.Status != tc.status || body.StatusCode != tc.status ||
				whole && body.Message != exact || !whole && !strings.Contains(body.Message, tc.msg) {
				t.Fatalf("%s %s: %d %s\nwant %d with message %q", tc.method, tc.path, r.status, r.body, tc.status, tc.msg)
			}
			if want, ok := paths[tc.name]; ok && (len(body.Fields) == 0 || body.Fields[0].Path != want || body.Fields[0].Message != body.Message) {
				t.Fatalf("fields %+v; want the path %q", body.Fields, want)
			}
			if r.header.Get(RevisionHeader) != "" {
				t.Fatalf("a refused request carries %s", RevisionHeader)
			}
			if after := e.storeDump(); !maps.Equal(before, after) {
				t.Fatalf("a refused request changed the store")
			}
		})
	}
	if r := e.do("PUT", acc+"/user", e.rootTk, "{}"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT on a list: %d", r.status)
	}
}

func mustPEM(t *testing.T) string {
	t.Helper()
	p, err := sdkPEM()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// grant is an agent body holding one grant.
func grant(action, resource string) string {
	return fmt.Sprintf(`{"access":{"allow":[{"action":%q,"resource":%q}]}}`, action, resource)
}

package admin

import (
	"github.com/wardenauthz/warden/internal/httpkit"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// FuzzAgentBody: any body either fails with a 400 naming fields, or yields
// identities and grants that obey the model's rules.
func FuzzAgentBody(f *testing.F) {
	for _, s := range []string{
		`{"firstName":"a","identities":[{"issuerId":"i","subject":"s"}],"access":{"allow":[{"action":"a:*","resource":"/x"}]}}`,
		`{"identities":[{"issuerId":"i","subject":"s"},{"issuerId":"i","subject":"s"}]}`,
		`{"access":{"allow":[{"action":"*:x","resource":""}]}}`, `null`, `[]`, `{"firstName":null}`, `{"a":1}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(body, append([]string{"identities", "access"}, userKind.names...)...)
		if err != nil {
			assert400(t, err)
			return
		}
		var rec storage.AgentRecord
		userKind.setNames(o, &rec)
		ids := o.identities("identities")
		allow := o.access("access")
		if err := o.err(); err != nil {
			assert400(t, err)
			return
		}
		seen := map[model.Identity]bool{}
		for _, id := range ids {
			if id.IssuerID == "" || id.Subject == "" || !printable(id.IssuerID) || !printable(id.Subject) || seen[id] {
				t.Fatalf("accepted identity %+v", id)
			}
			seen[id] = true
		}
		for _, g := range allow {
			if model.ValidatePermission(g) != nil {
				t.Fatalf("accepted grant %+v", g)
			}
		}
	})
}

// FuzzIssuerBody: any issuer body either fails with a 400, or yields an
// issuer with exactly one key source, 1 to 3 distinct keys that parse, or
// an https URL.
func FuzzIssuerBody(f *testing.F) {
	pemText := strings.TrimSpace(mustPEMForFuzz(f))
	for _, s := range []string{
		`{"publicKeys":[{"keyId":"a","publicKey":` + quoteJSON(pemText) + `}]}`,
		`{"jsonKeysUrl":"https://k.test/jwks","displayName":"x"}`,
		`{"jsonKeysUrl":"http://k.test"}`, `{"publicKeys":[]}`, `{"jsonKeysUrl":null}`, `{"id":"x"}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	eng, err := sidecar.New(state.New(), sidecar.Config{Audiences: []string{"a"}}, sidecar.Deps{})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{eng: eng}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		c := &call{r: r, w: httptest.NewRecorder(), id: "x"}
		p, err := s.readIssuer(c)
		if err != nil {
			assert400(t, err)
			return
		}
		iss := model.Issuer{ID: "x"}
		if err := p.apply(&iss); err != nil {
			assert400(t, err)
			return
		}
		if (iss.JSONKeysURL == "") == (len(iss.PublicKeys) == 0) || len(iss.PublicKeys) > maxIssuerKeys {
			t.Fatalf("accepted issuer %+v", iss)
		}
		if iss.JSONKeysURL != "" && !strings.HasPrefix(iss.JSONKeysURL, "https://") {
			t.Fatalf("accepted key URL %q", iss.JSONKeysURL)
		}
		keys := map[string]bool{}
		for _, k := range iss.PublicKeys {
			if _, err := sidecar.ParsePublicKey(k.PublicKey); err != nil || keys[k.KeyID] || k.KeyID == "" {
				t.Fatalf("accepted key %q: %v", k.KeyID, err)
			}
			keys[k.KeyID] = true
		}
	})
}

// FuzzInitBody: init request bodies fail with a 400 or yield a request
// whose profile only comes with pki.
func FuzzInitBody(f *testing.F) {
	for _, s := range []string{`{}`, `{"protocol":"pki","profile":{"a":1}}`, `{"subscriptionId":"s"}`, `{"protocol":"pki","functionId":"f"}`, `{"profile":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &call{r: httptest.NewRequest("POST", "/", strings.NewReader(string(body))), w: httptest.NewRecorder()}
		req, err := readInitRequest(c)
		if err != nil {
			assert400(t, err)
			return
		}
		if req.profile != nil && !req.pki || req.pki && len(req.legacy) > 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzCursor: any next value is refused with a 400 or decodes to the id a
// cursor of the same list was made from.
func FuzzCursor(f *testing.F) {
	f.Add("usr-0000000000000001", "")
	f.Add("https://idp/x", encodeCursor(cursorAgents, "x"))
	f.Fuzz(func(t *testing.T, id, next string) {
		if id != "" && strings.ToValidUTF8(id, "") == id {
			got, ok := decodeCursor(encodeCursor(cursorIssuers, id), cursorIssuers)
			if !ok || got != id {
				t.Fatalf("round trip of %q: %q %v", id, got, ok)
			}
		}
		q := map[string][]string{"next": {next}}
		if _, err := parsePage(q, cursorAgents); err != nil {
			assert400(t, err)
		}
	})
}

func assert400(t *testing.T, err error) {
	t.Helper()
	ae, ok := err.(*httpkit.Error)
	if !ok || ae.Status != 400 || ae.Message == "" {
		t.Fatalf("error %v is not a 400 with a message", err)
	}
}

func quoteJSON(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func mustPEMForFuzz(f *testing.F) string {
	signer(f)
	p, err := sdkPEM()
	if err != nil {
		f.Fatal(err)
	}
	return p
}

package model

import (
	"encoding/json"
	"testing"
)

// TestAgentWire: an agent is shown as a user or a client, with its
// identities and grants only in full, and empty fields left out.
func TestAgentWire(t *testing.T) {
	user := Agent{ID: "usr-1", Type: AgentUser, Account: "acc-1", FirstName: "Ada", PrimaryEmail: "ada@example.com",
		Identities: []Identity{{IssuerID: "i", Subject: "s"}}, Grants: []Permission{{Action: "*", Resource: "/"}}}
	client := Agent{ID: "clt-1", Type: AgentClient, DisplayName: "ci"}
	for _, tc := range []struct {
		a    Agent
		full bool
		want string
	}{
		{user, true, `{"id":"usr-1","firstName":"Ada","primaryEmail":"ada@example.com","identities":[{"issuerId":"i","subject":"s"}],"access":{"allow":[{"action":"*","resource":"/"}]}}`},
		{user, false, `{"id":"usr-1","firstName":"Ada","primaryEmail":"ada@example.com"}`},
		{client, true, `{"id":"clt-1","displayName":"ci"}`},
	} {
		b, err := json.Marshal(tc.a.Wire(tc.full))
		if err != nil || string(b) != tc.want {
			t.Errorf("%s full %v: %s, %v; want %s", tc.a.ID, tc.full, b, err, tc.want)
		}
	}
}

package state

import (
	"crypto"

	"github.com/wardenauthz/warden/sdk/model"
)

// accountRow is an account.
type accountRow struct {
	ID string
}

// IssuerRow is an issuer of an account with its uploaded keys parsed.
type IssuerRow struct {
	Account string
	ID      string
	Issuer  model.Issuer
	// Keys maps keyId to the parsed uploaded key; empty for a key URL
	// issuer. KeyErrors holds keys that did not parse, by keyId.
	Keys      map[string]crypto.PublicKey
	KeyErrors map[string]error
	// Digest identifies the issuer's key material (uploaded keys or key
	// URL): it changes exactly when the keys do.
	Digest [32]byte
}

// agentRow is a user or client. Its identities and grants are indexed in
// rows of their own; Agent carries no grants.
type agentRow struct {
	ID      string
	Account string
	Agent   *model.Agent
}

// identityRow maps (account, issuer, subject) to exactly one agent.
type identityRow struct {
	Account  string
	IssuerID string
	Subject  string
	AgentID  string
}

// grantsRow holds the grants of one agent, normalized, in the order given.
type grantsRow struct {
	AgentID string
	Grants  []model.Permission
}

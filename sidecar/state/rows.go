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

// The agent table's rows are *model.Agent, each a user or client with its
// identities and its grants (normalized, in the order given): a check reads
// the agent and exactly its own grants with one index lookup, and readers
// get the row itself, nothing copied. Grants in rows of their own, or an
// index of identities by agent, would cost every agent another radix tree
// entry, some 400 bytes, which a million agents feel.

// identityRow maps (account, issuer, subject) to exactly one agent.
type identityRow struct {
	Account  string
	IssuerID string
	Subject  string
	AgentID  string
}

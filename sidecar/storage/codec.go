package storage

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wardenauthz/warden/sdk/model"
)

// AccountRecord is the value of an account key.
type AccountRecord struct {
	ID string `json:"id"`
}

// AgentRecord is the value of an agent key: a user or a client, with its
// identities and its grants (normalized) in the order given.
type AgentRecord struct {
	ID           string             `json:"id"`
	Type         model.AgentType    `json:"type"`
	FirstName    string             `json:"firstName,omitempty"`
	LastName     string             `json:"lastName,omitempty"`
	PrimaryEmail string             `json:"primaryEmail,omitempty"`
	DisplayName  string             `json:"displayName,omitempty"`
	Identities   []model.Identity   `json:"identities,omitempty"`
	Allow        []model.Permission `json:"allow,omitempty"`
}

// Agent returns the record as the state's agent of account acc.
func (r *AgentRecord) Agent(acc string) model.Agent {
	return model.Agent{
		ID: r.ID, Type: r.Type, Account: acc,
		Identities: r.Identities, Grants: r.Allow,
		FirstName: r.FirstName, LastName: r.LastName, PrimaryEmail: r.PrimaryEmail, DisplayName: r.DisplayName,
	}
}

// InitRecord is the value of an init token's key. The secret signs the
// token (HS256); the record exists until the token expires, and is marked
// consumed, not deleted, when the token is used, so that a replay is told
// apart from a forgery.
type InitRecord struct {
	JTI       string          `json:"jti"`
	AgentID   string          `json:"agentId"`
	AgentType model.AgentType `json:"agentType"`
	IssuerID  string          `json:"issuerId"`
	Subject   string          `json:"subject"`
	Secret    []byte          `json:"secret"`
	Expires   int64           `json:"exp"`
	Consumed  bool            `json:"consumed,omitempty"`
	// Protocol is the protocol the token was minted for: "pki", "oauth",
	// or "" for the legacy form. An oauth token mints no issuer or
	// subject: the access token given at enrollment names the identity.
	Protocol string `json:"protocol,omitempty"`
	// Grants are the agent's grants when the token was minted: the
	// escalation guard was checked against them, so enrollment is refused
	// if the agent holds more by then.
	Grants []model.Permission `json:"grants,omitempty"`
}

// HookRecord is the value of a hook's key. Its module is stored beside it
// in Chunks chunks of at most HookChunkSize bytes, written before the record
// and verified against SHA256 when read.
type HookRecord struct {
	Mode         string `json:"mode"`
	ActionPrefix string `json:"actionPrefix,omitempty"`
	SHA256       string `json:"sha256"`
	Size         int    `json:"size"`
	Chunks       int    `json:"chunks"`
}

// HookChunkSize is the most bytes of a module one chunk holds: well under
// etcd's default request limit of 1.5 MiB.
const HookChunkSize = 512 << 10

// BootstrapRecord is the value of the bootstrap key: what the first start
// created.
type BootstrapRecord struct {
	Account    string `json:"account"`
	RootClient string `json:"rootClient"`
}

// Encode encodes a record. HTML characters are not escaped: "<" as
// "\u003c" would make a record up to six times the size of what was sent.
func Encode(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Records are plain structs of strings, slices and numbers.
		panic(fmt.Sprintf("storage: encoding %T: %v", v, err))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Decode decodes a record stored at key.
func Decode(key string, value []byte, v any) error {
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	return nil
}

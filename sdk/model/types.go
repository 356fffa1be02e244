package model

// Permission is one access grant or requirement: an action on a resource.
type Permission struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// Access is the set of grants an agent holds, as Fusebit spells it.
type Access struct {
	Allow []Permission `json:"allow"`
}

// Identity binds an agent to the tokens of one issuer with one subject.
type Identity struct {
	IssuerID string `json:"issuerId"`
	Subject  string `json:"subject"`
}

// PublicKey is an uploaded issuer key in PEM: SPKI, PKCS#1 or an X.509
// certificate.
type PublicKey struct {
	KeyID     string `json:"keyId"`
	PublicKey string `json:"publicKey"`
}

// Issuer is a trusted token issuer of an account. Exactly one of JSONKeysURL
// and PublicKeys is set.
type Issuer struct {
	ID          string      `json:"id"`
	DisplayName string      `json:"displayName,omitempty"`
	JSONKeysURL string      `json:"jsonKeysUrl,omitempty"`
	PublicKeys  []PublicKey `json:"publicKeys,omitempty"`
}

// AgentType says whether an agent is a user or a client.
type AgentType string

// The agent types.
const (
	AgentUser   AgentType = "user"
	AgentClient AgentType = "client"
)

// User is a human agent. Its ID is empty in the body that adds it:
// Warden assigns one.
type User struct {
	ID           string     `json:"id,omitempty"`
	FirstName    string     `json:"firstName,omitempty"`
	LastName     string     `json:"lastName,omitempty"`
	PrimaryEmail string     `json:"primaryEmail,omitempty"`
	Identities   []Identity `json:"identities,omitempty"`
	Access       *Access    `json:"access,omitempty"`
}

// Client is a non-human agent. Its ID is empty in the body that adds it.
type Client struct {
	ID          string     `json:"id,omitempty"`
	DisplayName string     `json:"displayName,omitempty"`
	Identities  []Identity `json:"identities,omitempty"`
	Access      *Access    `json:"access,omitempty"`
}

// Agent is the part of a user or client that decisions need. Grants are
// stored normalized.
type Agent struct {
	ID         string
	Type       AgentType
	Account    string
	Identities []Identity
	Grants     []Permission
	// Name fields, kept so the replica can answer admin reads.
	FirstName, LastName, PrimaryEmail, DisplayName string
}

// Wire returns the agent as the admin API shows it: a User or a Client,
// with empty fields left out. full adds its identities and grants; without
// them it is a list's summary.
func (a *Agent) Wire(full bool) any {
	var ids []Identity
	var access *Access
	if full {
		ids = a.Identities
		if len(a.Grants) > 0 {
			access = &Access{Allow: a.Grants}
		}
	}
	if a.Type == AgentUser {
		return User{ID: a.ID, FirstName: a.FirstName, LastName: a.LastName, PrimaryEmail: a.PrimaryEmail, Identities: ids, Access: access}
	}
	return Client{ID: a.ID, DisplayName: a.DisplayName, Identities: ids, Access: access}
}

// AgentRef names the agent a decision was made for.
type AgentRef struct {
	ID   string    `json:"id"`
	Type AgentType `json:"type"`
}

// Decision is the answer to a check. Status is 200 (allowed), 401 (no valid
// token) or 403 (valid token, not permitted); Reason says why in words. A
// check made in process (sidecar.Engine.Check) whose action or resource
// breaks the grammar gets 400; over HTTP that is the response's status.
// Agent is set once the token resolved to an agent, Grant when a grant
// allowed the request. Revision is the state revision the decision was made
// at.
type Decision struct {
	Allow    bool       `json:"allow"`
	Status   int        `json:"status"`
	Reason   string     `json:"reason"`
	Agent    AgentRef   `json:"agent,omitzero"`
	Grant    Permission `json:"grant,omitzero"`
	Revision int64      `json:"revision"`
}

// PermissionsClaim is the claim that carries a token's inline permissions,
// unless a deployment names another.
const PermissionsClaim = "https://fusebit.io/permissions"

// RevisionHeader carries the store revision a successful admin write
// produced; a check's minRevision names it.
const RevisionHeader = "Warden-Revision"

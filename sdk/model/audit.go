package model

// AuditEntry is one admin API call as the audit route lists it, as
// Fusebit's: who called (the verified token's issuer and subject, empty
// when the token was refused), the action and resource it needed, whether
// it was authorized, and when (RFC 3339, UTC, nanoseconds).
type AuditEntry struct {
	AccountID  string `json:"accountId"`
	IssuerID   string `json:"issuerId"`
	Subject    string `json:"subject"`
	Action     string `json:"action"`
	Resource   string `json:"resource"`
	Authorized bool   `json:"authorized"`
	Timestamp  string `json:"timestamp"`
}

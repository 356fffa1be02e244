package abi

import "strconv"

// The members of the input a hook receives (ABI version 1): the decision
// context, one JSON object. The host writes it with AppendInput; the guest
// kit reads it by these names.
const (
	FieldNow      = "now"      // unix seconds
	FieldRequest  = "request"  // {action, resource, sourceIp?}
	FieldAction   = "action"   // in request and in grant
	FieldResource = "resource" // in request (normalized) and in grant
	FieldSourceIP = "sourceIp" // in request, when known
	FieldClaims   = "claims"   // the token's verified claims; {} when it did not verify
	FieldAgent    = "agent"    // {id, type}, when the token resolved to one
	FieldID       = "id"       // in agent
	FieldType     = "type"     // in agent: "user" or "client"
	FieldGrant    = "grant"    // {action, resource}: the grant that allowed, if any
	FieldDecision = "decision" // {allow, status, reason}: the decision so far
	FieldAllow    = "allow"    // in decision, and in the answer
	FieldStatus   = "status"   // in decision
	FieldReason   = "reason"   // in decision, and in the answer
	FieldHeaders  = "headers"  // in the answer: headers for the upstream request
)

// Input is the decision context, as the host knows it.
type Input struct {
	Now              int64
	Action, Resource string
	SourceIP         string // "" when unknown
	// Claims is the token's verified payload, a JSON object; nil when the
	// token did not verify.
	Claims                     []byte
	AgentID, AgentType         string // "" when no agent
	GrantAction, GrantResource string // "" when no grant allowed
	Allow                      bool
	Status                     int
	Reason                     string
}

// AppendInput appends in as the JSON object a hook receives. It allocates
// nothing beyond b's growth: it is on the check path.
func AppendInput(b []byte, in *Input) []byte {
	b = append(b, `{"`+FieldNow+`":`...)
	b = strconv.AppendInt(b, in.Now, 10)
	b = append(b, `,"`+FieldRequest+`":{"`+FieldAction+`":`...)
	b = AppendString(b, in.Action)
	b = append(b, `,"`+FieldResource+`":`...)
	b = AppendString(b, in.Resource)
	if in.SourceIP != "" {
		b = append(b, `,"`+FieldSourceIP+`":`...)
		b = AppendString(b, in.SourceIP)
	}
	b = append(b, `},"`+FieldClaims+`":`...)
	if in.Claims == nil {
		b = append(b, "{}"...)
	} else {
		b = append(b, in.Claims...)
	}
	if in.AgentID != "" {
		b = append(b, `,"`+FieldAgent+`":{"`+FieldID+`":`...)
		b = AppendString(b, in.AgentID)
		b = append(b, `,"`+FieldType+`":`...)
		b = AppendString(b, in.AgentType)
		b = append(b, '}')
	}
	if in.GrantAction != "" {
		b = append(b, `,"`+FieldGrant+`":{"`+FieldAction+`":`...)
		b = AppendString(b, in.GrantAction)
		b = append(b, `,"`+FieldResource+`":`...)
		b = AppendString(b, in.GrantResource)
		b = append(b, '}')
	}
	b = append(b, `,"`+FieldDecision+`":{"`+FieldAllow+`":`...)
	b = strconv.AppendBool(b, in.Allow)
	b = append(b, `,"`+FieldStatus+`":`...)
	b = strconv.AppendInt(b, int64(in.Status), 10)
	b = append(b, `,"`+FieldReason+`":`...)
	b = AppendString(b, in.Reason)
	return append(b, `}}`...)
}

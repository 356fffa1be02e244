package state

import (
	"github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableAccount  = "account"
	tableIssuer   = "issuer"
	tableAgent    = "agent"
	tableIdentity = "identity"
	tableGrant    = "grant"
)

// Schema returns the memdb schema of the state. Identity and issuer keys are
// compound indexes of NUL-terminated strings, so ids must not contain NUL;
// the admin API refuses control characters in them.
func Schema() *memdb.DBSchema {
	str := func(field string) *memdb.StringFieldIndex { return &memdb.StringFieldIndex{Field: field} }
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableAccount: {
			Name: tableAccount,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: str("ID")},
			},
		},
		tableIssuer: {
			Name: tableIssuer,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{
					Indexes: []memdb.Indexer{str("Account"), str("ID")},
				}},
			},
		},
		tableAgent: {
			Name: tableAgent,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: str("ID")},
				// Lists page through an account's agents in id order,
				// starting at a cursor.
				"account_id": {Name: "account_id", Unique: true, Indexer: &memdb.CompoundIndex{
					Indexes: []memdb.Indexer{str("Account"), str("ID")},
				}},
			},
		},
		tableIdentity: {
			Name: tableIdentity,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{
					Indexes: []memdb.Indexer{str("Account"), str("IssuerID"), str("Subject")},
				}},
				"agent": {Name: "agent", Indexer: str("AgentID")},
			},
		},
		tableGrant: {
			// One row per agent holding its grants in order: a check reads
			// exactly the agent's own grants with one index lookup, and a
			// million grants cost a hundred thousand rows, not a million.
			Name: tableGrant,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: str("AgentID")},
			},
		},
	}}
}

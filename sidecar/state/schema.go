package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	"github.com/wardenauthz/warden/sdk/model"
)

// Table names.
const (
	tableAccount  = "account"
	tableIssuer   = "issuer"
	tableAgent    = "agent"
	tableIdentity = "identity"
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
				"id": {Name: "id", Unique: true, Indexer: &fieldsIndex[*IssuerRow]{n: 2,
					fields: func(r *IssuerRow) [3]string { return [3]string{r.Account, r.ID} }}},
			},
		},
		tableAgent: {
			// Rows are *model.Agent, grants included.
			Name: tableAgent,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &fieldsIndex[*model.Agent]{n: 1,
					fields: func(a *model.Agent) [3]string { return [3]string{a.ID} }}},
				// Lists page through an account's agents in id order,
				// starting at a cursor.
				"account_id": {Name: "account_id", Unique: true, Indexer: &fieldsIndex[*model.Agent]{n: 2,
					fields: func(a *model.Agent) [3]string { return [3]string{a.Account, a.ID} }}},
			},
		},
		tableIdentity: {
			// No index by agent: an agent's row lists its identities,
			// which is how they are found to be removed with it.
			Name: tableIdentity,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &fieldsIndex[*identityRow]{n: 3,
					fields: func(r *identityRow) [3]string { return [3]string{r.Account, r.IssuerID, r.Subject} }}},
			},
		},
	}}
}

// fieldsIndex indexes rows of type T by n of their strings (at most 3), each
// NUL-terminated: the keys a memdb CompoundIndex of StringFieldIndex makes,
// so the same order, and a row with an empty one is missing from the index.
// It reads the fields without reflection and builds a key in one
// allocation, which matters because every start indexes every agent and
// identity of the store.
type fieldsIndex[T any] struct {
	n      int
	fields func(row T) [3]string
}

// FromObject returns a row's key.
func (x *fieldsIndex[T]) FromObject(raw any) (bool, []byte, error) {
	row, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("indexing a %T", raw)
	}
	f := x.fields(row)
	for _, s := range f[:x.n] {
		if s == "" {
			return false, nil, nil
		}
	}
	return true, key(f[:x.n]), nil
}

// FromArgs returns the key of n strings.
func (x *fieldsIndex[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != x.n {
		return nil, fmt.Errorf("%d arguments for an index of %d fields", len(args), x.n)
	}
	var f [3]string
	for i, arg := range args {
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("argument %d must be a string: %#v", i, arg)
		}
		f[i] = s
	}
	return key(f[:x.n]), nil
}

// key joins strings into an index key, each NUL-terminated.
func key(fields []string) []byte {
	size := 0
	for _, s := range fields {
		size += len(s) + 1
	}
	b := make([]byte, 0, size)
	for _, s := range fields {
		b = append(append(b, s...), 0)
	}
	return b
}

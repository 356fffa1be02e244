package state

import (
	"github.com/hashicorp/go-memdb"
	"github.com/wardenauthz/warden/sdk/model"
)

// Snapshot is an immutable view of the state at one revision. It is safe for
// concurrent use, and derived values may be memoized against it.
type Snapshot struct {
	Revision int64
	// txn reads the snapshot for every lookup. A memdb read transaction
	// only reads the immutable trees it was opened on, so one serves every
	// goroutine, and a lookup does not open a transaction of its own.
	txn *memdb.Txn
}

func newSnapshot(rev int64, db *memdb.MemDB) *Snapshot {
	return &Snapshot{Revision: rev, txn: db.Txn(false)}
}

func (s *Snapshot) first(table, index string, args ...any) any {
	raw, err := s.txn.First(table, index, args...)
	if err != nil {
		// Only a wrong table or index name fails, which tests rule out.
		panic("state: " + err.Error())
	}
	return raw
}

// HasAccount reports whether the account exists.
func (s *Snapshot) HasAccount(id string) bool {
	return s.first(tableAccount, "id", id) != nil
}

// Issuer returns an issuer of an account.
func (s *Snapshot) Issuer(account, id string) (*IssuerRow, bool) {
	row, _ := s.first(tableIssuer, "id", account, id).(*IssuerRow)
	return row, row != nil
}

// Agent returns a user or client by id, with its identities and grants.
// The result is shared: callers must not modify it.
func (s *Snapshot) Agent(id string) (*model.Agent, bool) {
	a, _ := s.first(tableAgent, "id", id).(*model.Agent)
	return a, a != nil
}

// AgentByIdentity resolves (account, issuer, subject) to its agent.
func (s *Snapshot) AgentByIdentity(account, issuerID, subject string) (*model.Agent, bool) {
	id, _ := s.first(tableIdentity, "id", account, issuerID, subject).(*identityRow)
	if id == nil {
		return nil, false
	}
	return s.Agent(id.AgentID)
}

// Grants returns an agent's grants, normalized, in the order given. The
// slice is shared: callers must not modify it.
func (s *Snapshot) Grants(agentID string) []model.Permission {
	if a, ok := s.Agent(agentID); ok {
		return a.Grants
	}
	return nil
}

// Agents calls fn for every agent of an account whose id sorts after
// after ("" for all), in id order, until fn returns false. It seeks to
// after rather than skipping to it, so a page of a long list costs the
// page, not the list before it. The agents are shared, as Agent's are.
func (s *Snapshot) Agents(account, after string, fn func(*model.Agent) bool) {
	it, err := s.txn.LowerBound(tableAgent, "account_id", account, after)
	if err != nil {
		panic("state: " + err.Error())
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*model.Agent)
		if a.Account != account {
			return
		}
		if a.ID == after {
			continue
		}
		if !fn(a) {
			return
		}
	}
}

// Issuers calls fn for every issuer of an account whose id sorts after
// after ("" for all), in id order, until fn returns false.
func (s *Snapshot) Issuers(account, after string, fn func(*IssuerRow) bool) {
	it, err := s.txn.LowerBound(tableIssuer, "id", account, after)
	if err != nil {
		panic("state: " + err.Error())
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		row := raw.(*IssuerRow)
		if row.Account != account {
			return
		}
		if row.ID == after {
			continue
		}
		if !fn(row) {
			return
		}
	}
}

package state

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
)

// DB holds the state, in go-memdb. Apply is serialized; Snapshot is wait-free.
type DB struct {
	mu  sync.Mutex // serializes Apply
	db  *memdb.MemDB
	cur atomic.Pointer[Snapshot]
	// applied is closed and replaced on every Apply, waking WaitRevision.
	applied atomic.Pointer[chan struct{}]
}

// New returns an empty state at revision 0.
func New() *DB {
	db, err := memdb.NewMemDB(Schema())
	if err != nil {
		// The schema is a constant; TestSchema validates it.
		panic("state: invalid schema: " + err.Error())
	}
	s := &DB{db: db}
	s.cur.Store(&Snapshot{db: db.Snapshot()})
	ch := make(chan struct{})
	s.applied.Store(&ch)
	return s
}

// Snapshot returns the current immutable snapshot.
func (s *DB) Snapshot() *Snapshot { return s.cur.Load() }

// Revision returns the revision of the current snapshot.
func (s *DB) Revision() int64 { return s.cur.Load().Revision }

// ErrRevisionNotReached is returned by WaitRevision when the wait ends first.
var ErrRevisionNotReached = errors.New("state revision not reached")

// WaitRevision waits until a snapshot at revision rev or later is current,
// or ctx ends.
func (s *DB) WaitRevision(ctx context.Context, rev int64) (*Snapshot, error) {
	for {
		ch := *s.applied.Load()
		if snap := s.cur.Load(); snap.Revision >= rev {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for revision %d, at %d: %w", ErrRevisionNotReached, rev, s.Revision(), ctx.Err())
		}
	}
}

// Apply applies a batch in one write transaction and publishes a snapshot at
// the batch's revision. On error nothing is applied. A batch whose revision
// is lower than the current one is refused, so state never goes back.
func (s *DB) Apply(b *Batch) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	if b.Revision < cur.Revision {
		return nil, fmt.Errorf("applying revision %d: state is already at %d", b.Revision, cur.Revision)
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	for i, op := range b.ops {
		if err := op(txn); err != nil {
			return nil, fmt.Errorf("applying change %d of revision %d: %w", i, b.Revision, err)
		}
	}
	txn.Commit()
	snap := &Snapshot{Revision: b.Revision, db: s.db.Snapshot()}
	s.cur.Store(snap)
	ch := make(chan struct{})
	close(*s.applied.Swap(&ch))
	return snap, nil
}

// Batch is a set of changes applied together at one revision.
type Batch struct {
	Revision int64
	ops      []func(*memdb.Txn) error
}

// Len returns the number of changes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// PutAccount creates an account, or leaves it as it is.
func (b *Batch) PutAccount(id string) {
	b.ops = append(b.ops, func(txn *memdb.Txn) error {
		return txn.Insert(tableAccount, &accountRow{ID: id})
	})
}

// DeleteAccount removes an account. Its issuers and agents are left to their
// own deletions.
func (b *Batch) DeleteAccount(id string) {
	b.ops = append(b.ops, func(txn *memdb.Txn) error {
		_, err := txn.DeleteAll(tableAccount, "id", id)
		return err
	})
}

// PutIssuer creates or replaces an issuer of an account. Uploaded keys are
// parsed now, so checks never parse PEM; a key that does not parse is kept in
// KeyErrors and verifies nothing.
func (b *Batch) PutIssuer(account string, iss model.Issuer) {
	row := newIssuerRow(account, iss)
	b.ops = append(b.ops, func(txn *memdb.Txn) error {
		return txn.Insert(tableIssuer, row)
	})
}

func newIssuerRow(account string, iss model.Issuer) *IssuerRow {
	row := &IssuerRow{Account: account, ID: iss.ID, Issuer: iss}
	h := sha256.New()
	fmt.Fprintf(h, "url %q\n", iss.JSONKeysURL)
	if len(iss.PublicKeys) > 0 {
		row.Keys = make(map[string]crypto.PublicKey, len(iss.PublicKeys))
	}
	for _, pk := range iss.PublicKeys {
		fmt.Fprintf(h, "key %q %q\n", pk.KeyID, pk.PublicKey)
		key, err := keys.ParsePEM(pk.PublicKey)
		if err != nil {
			if row.KeyErrors == nil {
				row.KeyErrors = map[string]error{}
			}
			row.KeyErrors[pk.KeyID] = err
			continue
		}
		row.Keys[pk.KeyID] = key
	}
	h.Sum(row.Digest[:0])
	return row
}

// DeleteIssuer removes an issuer of an account.
func (b *Batch) DeleteIssuer(account, id string) {
	b.ops = append(b.ops, func(txn *memdb.Txn) error {
		_, err := txn.DeleteAll(tableIssuer, "id", account, id)
		return err
	})
}

// PutAgent creates or replaces a user or client, replacing all its
// identities and grants. Grant resources are normalized.
func (b *Batch) PutAgent(a model.Agent) {
	a.Grants = model.NormalizePermissions(a.Grants)
	b.ops = append(b.ops, func(txn *memdb.Txn) error {
		if err := deleteAgent(txn, a.ID); err != nil {
			return err
		}
		grants := a.Grants
		a.Grants = nil
		if err := txn.Insert(tableAgent, &agentRow{ID: a.ID, Account: a.Account, Agent: &a}); err != nil {
			return err
		}
		if err := txn.Insert(tableGrant, &grantsRow{AgentID: a.ID, Grants: grants}); err != nil {
			return err
		}
		for _, id := range a.Identities {
			row := &identityRow{Account: a.Account, IssuerID: id.IssuerID, Subject: id.Subject, AgentID: a.ID}
			if err := txn.Insert(tableIdentity, row); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteAgent removes a user or client with its identities and grants.
func (b *Batch) DeleteAgent(id string) {
	b.ops = append(b.ops, func(txn *memdb.Txn) error { return deleteAgent(txn, id) })
}

func deleteAgent(txn *memdb.Txn, id string) error {
	if _, err := txn.DeleteAll(tableAgent, "id", id); err != nil {
		return err
	}
	// Only identities still pointing at this agent go: another agent may
	// have taken one over in the same batch.
	if _, err := txn.DeleteAll(tableIdentity, "agent", id); err != nil {
		return err
	}
	_, err := txn.DeleteAll(tableGrant, "id", id)
	return err
}

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
	s.cur.Store(newSnapshot(0, db.Snapshot()))
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
	t := s.Begin()
	defer t.Abort()
	if err := t.behind(b.Revision); err != nil {
		return nil, err
	}
	for _, op := range b.ops {
		op(t)
	}
	return t.Commit(b.Revision)
}

// Txn is one write transaction on the state, for changes too many to hold
// in a Batch first (a whole store, listed): each change is made in the
// transaction as it comes, and none is visible until Commit publishes
// them all in one snapshot. Until Commit or Abort, Apply and Begin wait.
// Txn is not safe for concurrent use.
type Txn struct {
	s   *DB
	txn *memdb.Txn
	n   int
	// err is the first change that failed; the rest are skipped and
	// Commit refuses the transaction.
	err error
}

// Begin starts a write transaction.
func (s *DB) Begin() *Txn {
	s.mu.Lock()
	return &Txn{s: s, txn: s.db.Txn(true)}
}

// Len returns the number of changes made in the transaction.
func (t *Txn) Len() int { return t.n }

// Commit publishes the transaction's changes in a snapshot at revision rev
// and ends it. A failed change, or a revision lower than the current one,
// ends it with nothing applied.
func (t *Txn) Commit(rev int64) (*Snapshot, error) {
	if t.txn == nil {
		return nil, errors.New("committing a transaction that ended")
	}
	defer t.Abort()
	if t.err != nil {
		return nil, fmt.Errorf("applying revision %d: %w", rev, t.err)
	}
	if err := t.behind(rev); err != nil {
		return nil, err
	}
	s := t.s
	t.txn.Commit()
	snap := newSnapshot(rev, s.db.Snapshot())
	s.cur.Store(snap)
	ch := make(chan struct{})
	close(*s.applied.Swap(&ch))
	return snap, nil
}

// behind refuses a revision lower than the state's: state never goes back.
func (t *Txn) behind(rev int64) error {
	if cur := t.s.cur.Load(); rev < cur.Revision {
		return fmt.Errorf("applying revision %d: state is already at %d", rev, cur.Revision)
	}
	return nil
}

// Abort ends the transaction, discarding its changes unless Commit
// published them. Aborting again does nothing.
func (t *Txn) Abort() {
	if t.txn == nil {
		return
	}
	t.txn.Abort()
	t.txn = nil
	t.s.mu.Unlock()
}

// live reports whether the transaction takes changes: it has not ended,
// and none failed.
func (t *Txn) live() bool { return t.txn != nil && t.err == nil }

// done records a change made, and its failure.
func (t *Txn) done(err error) {
	if err != nil {
		t.err = fmt.Errorf("change %d: %w", t.n, err)
	}
	t.n++
}

// PutAccount creates an account, or leaves it as it is.
func (t *Txn) PutAccount(id string) {
	if t.live() {
		t.done(t.txn.Insert(tableAccount, &accountRow{ID: id}))
	}
}

// DeleteAccount removes an account. Its issuers and agents are left to their
// own deletions.
func (t *Txn) DeleteAccount(id string) {
	if t.live() {
		_, err := t.txn.DeleteAll(tableAccount, "id", id)
		t.done(err)
	}
}

// PutIssuer creates or replaces an issuer of an account. Uploaded keys are
// parsed now, so checks never parse PEM; a key that does not parse is kept in
// KeyErrors and verifies nothing.
func (t *Txn) PutIssuer(account string, iss model.Issuer) {
	if t.live() {
		t.putIssuer(newIssuerRow(account, iss))
	}
}

func (t *Txn) putIssuer(row *IssuerRow) {
	if t.live() {
		t.done(t.txn.Insert(tableIssuer, row))
	}
}

// DeleteIssuer removes an issuer of an account.
func (t *Txn) DeleteIssuer(account, id string) {
	if t.live() {
		_, err := t.txn.DeleteAll(tableIssuer, "id", account, id)
		t.done(err)
	}
}

// PutAgent creates or replaces a user or client, replacing all its
// identities and grants. Grant resources are normalized. The state keeps
// what a's slices hold: the caller must not modify it after.
func (t *Txn) PutAgent(a model.Agent) {
	if t.live() {
		a.Grants = model.NormalizePermissions(a.Grants)
		t.done(putAgent(t.txn, &a))
	}
}

// DeleteAgent removes a user or client with its identities and grants.
func (t *Txn) DeleteAgent(id string) {
	if t.live() {
		t.done(deleteAgent(t.txn, id))
	}
}

// Batch is a set of changes applied together at one revision.
type Batch struct {
	Revision int64
	ops      []func(*Txn)
}

// Len returns the number of changes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// PutAccount creates an account, or leaves it as it is.
func (b *Batch) PutAccount(id string) {
	b.ops = append(b.ops, func(t *Txn) { t.PutAccount(id) })
}

// DeleteAccount removes an account. Its issuers and agents are left to their
// own deletions.
func (b *Batch) DeleteAccount(id string) {
	b.ops = append(b.ops, func(t *Txn) { t.DeleteAccount(id) })
}

// PutIssuer creates or replaces an issuer of an account. Uploaded keys are
// parsed now, so checks never parse PEM; a key that does not parse is kept in
// KeyErrors and verifies nothing.
func (b *Batch) PutIssuer(account string, iss model.Issuer) {
	row := newIssuerRow(account, iss)
	b.ops = append(b.ops, func(t *Txn) { t.putIssuer(row) })
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
	b.ops = append(b.ops, func(t *Txn) { t.DeleteIssuer(account, id) })
}

// PutAgent creates or replaces a user or client, replacing all its
// identities and grants. Grant resources are normalized.
func (b *Batch) PutAgent(a model.Agent) {
	b.ops = append(b.ops, func(t *Txn) { t.PutAgent(a) })
}

// DeleteAgent removes a user or client with its identities and grants.
func (b *Batch) DeleteAgent(id string) {
	b.ops = append(b.ops, func(t *Txn) { t.DeleteAgent(id) })
}

func putAgent(txn *memdb.Txn, a *model.Agent) error {
	if err := deleteAgent(txn, a.ID); err != nil {
		return err
	}
	if err := txn.Insert(tableAgent, a); err != nil {
		return err
	}
	for _, id := range a.Identities {
		row := &identityRow{Account: a.Account, IssuerID: id.IssuerID, Subject: id.Subject, AgentID: a.ID}
		if err := txn.Insert(tableIdentity, row); err != nil {
			return err
		}
	}
	return nil
}

func deleteAgent(txn *memdb.Txn, id string) error {
	raw, err := txn.First(tableAgent, "id", id)
	if raw == nil || err != nil {
		return err
	}
	a := raw.(*model.Agent)
	if err := txn.Delete(tableAgent, a); err != nil {
		return err
	}
	// The agent's identities are those its row lists, but only those
	// still pointing at it go: another agent may have taken one over.
	for _, ident := range a.Identities {
		raw, err := txn.First(tableIdentity, "id", a.Account, ident.IssuerID, ident.Subject)
		if err != nil {
			return err
		}
		if row, _ := raw.(*identityRow); row != nil && row.AgentID == id {
			if err := txn.Delete(tableIdentity, row); err != nil {
				return err
			}
		}
	}
	return nil
}

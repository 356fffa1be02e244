package state

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/wardenauthz/warden/sdk/model"
)

func TestCoreSchemaValid(t *testing.T) {
	t.Parallel()
	if err := Schema().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := memdb.NewMemDB(Schema()); err != nil {
		t.Fatal(err)
	}
}

func TestCoreApplyAndIsolation(t *testing.T) {
	t.Parallel()
	s := New()
	const acc, usr = "acc-0123456789abcdef", "usr-0123456789abcdef"
	b := &Batch{Revision: 5}
	b.PutAccount(acc)
	b.PutIssuer(acc, model.Issuer{ID: "iss", PublicKeys: []model.PublicKey{{KeyID: "bad", PublicKey: "not pem"}}})
	b.PutAgent(model.Agent{ID: usr, Type: model.AgentUser, Account: acc,
		Identities: []model.Identity{{IssuerID: "iss", Subject: "s1"}},
		Grants:     []model.Permission{{Action: "a", Resource: "x"}}})
	before := s.Snapshot()
	snap, err := s.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	if before.HasAccount(acc) || before.Revision != 0 {
		t.Fatal("an older snapshot saw a later write")
	}
	if !snap.HasAccount(acc) || snap.Revision != 5 || s.Revision() != 5 {
		t.Fatal("write not visible")
	}
	row, ok := snap.Issuer(acc, "iss")
	if !ok || row.KeyErrors["bad"] == nil || len(row.Keys) != 0 {
		t.Fatalf("issuer row %+v", row)
	}
	a, ok := snap.AgentByIdentity(acc, "iss", "s1")
	if !ok || a.ID != usr || len(a.Grants) != 1 || a.Grants[0].Resource != "/x/" {
		t.Fatalf("agent %+v", a)
	}
	// Replacing the agent replaces its identities and grants.
	b = &Batch{Revision: 6}
	b.PutAgent(model.Agent{ID: usr, Type: model.AgentUser, Account: acc,
		Identities: []model.Identity{{IssuerID: "iss", Subject: "s2"}}})
	snap2, err := s.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap2.AgentByIdentity(acc, "iss", "s1"); ok {
		t.Fatal("old identity still resolves")
	}
	if a, ok := snap2.AgentByIdentity(acc, "iss", "s2"); !ok || len(a.Grants) != 0 {
		t.Fatalf("new identity: %+v %v", a, ok)
	}
	// Going back in revision is refused and changes nothing.
	b = &Batch{Revision: 4}
	b.DeleteAgent(usr)
	if _, err := s.Apply(b); err == nil {
		t.Fatal("applied an older revision")
	}
	if _, ok := s.Snapshot().Agent(usr); !ok {
		t.Fatal("refused batch changed state")
	}
}

func TestCoreIssuerDigest(t *testing.T) {
	t.Parallel()
	d := func(iss model.Issuer) [32]byte { return newIssuerRow("acc", iss).Digest }
	base := model.Issuer{ID: "i", JSONKeysURL: "https://a"}
	if d(base) != d(model.Issuer{ID: "i", JSONKeysURL: "https://a", DisplayName: "x"}) {
		t.Fatal("display name changed the digest")
	}
	if d(base) == d(model.Issuer{ID: "i", JSONKeysURL: "https://b"}) {
		t.Fatal("URL change kept the digest")
	}
	if d(model.Issuer{ID: "i", PublicKeys: []model.PublicKey{{KeyID: "k", PublicKey: "p"}}}) ==
		d(model.Issuer{ID: "i", PublicKeys: []model.PublicKey{{KeyID: "k", PublicKey: "q"}}}) {
		t.Fatal("key change kept the digest")
	}
}

func TestCoreWaitRevision(t *testing.T) {
	t.Parallel()
	s := New()
	go func() {
		time.Sleep(10 * time.Millisecond)
		_, _ = s.Apply(&Batch{Revision: 3})
	}()
	snap, err := s.WaitRevision(context.Background(), 3)
	if err != nil || snap.Revision != 3 {
		t.Fatalf("WaitRevision = %v, %v", snap, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WaitRevision(ctx, 9); !errors.Is(err, ErrRevisionNotReached) {
		t.Fatalf("WaitRevision on a cancelled context: %v", err)
	}
}

// TestCoreListsSeek: listing an account's agents or issuers after a cursor
// yields exactly the rows of that account after it, in id order.
func TestCoreListsSeek(t *testing.T) {
	t.Parallel()
	const a1, a2 = "acc-0000000000000001", "acc-0000000000000002"
	s := New()
	b := &Batch{Revision: 1}
	ids := map[string][]string{
		a1: {"usr-0000000000000003", "usr-0000000000000001", "clt-0000000000000002"},
		a2: {"usr-0000000000000013", "usr-0000000000000011", "clt-0000000000000012"},
	}
	for _, acc := range []string{a1, a2} {
		b.PutAccount(acc)
		for _, id := range ids[acc] {
			b.PutAgent(model.Agent{ID: id, Type: model.AgentTypeOf(id), Account: acc})
		}
		for _, iss := range []string{"https://b", "https://a", "https://a/x"} {
			b.PutIssuer(acc, model.Issuer{ID: iss, JSONKeysURL: iss})
		}
	}
	snap, err := s.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	agents := func(acc, after string) (ids []string) {
		snap.Agents(acc, after, func(a *model.Agent) bool { ids = append(ids, a.ID); return true })
		return ids
	}
	issuers := func(acc, after string) (ids []string) {
		snap.Issuers(acc, after, func(r *IssuerRow) bool { ids = append(ids, r.ID); return true })
		return ids
	}
	tests := []struct {
		name string
		got  []string
		want string
	}{
		{"all agents of a1", agents(a1, ""), "clt-0000000000000002 usr-0000000000000001 usr-0000000000000003"},
		{"agents of a2 after a cursor on a row", agents(a2, "usr-0000000000000011"), "usr-0000000000000013"},
		{"agents after a cursor between rows", agents(a1, "clt-9"), "usr-0000000000000001 usr-0000000000000003"},
		{"agents after the last", agents(a1, "usr-0000000000000003"), ""},
		{"all issuers of a2", issuers(a2, ""), "https://a https://a/x https://b"},
		{"issuers after a prefix of another", issuers(a1, "https://a"), "https://a/x https://b"},
		{"an unknown account", agents("acc-0000000000000009", ""), ""},
	}
	for _, tc := range tests {
		if got := strings.Join(tc.got, " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestCoreTxn: a transaction's changes are invisible until it commits,
// then visible at once at its revision; an aborted transaction, one with a
// failed change, and one at an older revision change nothing.
func TestCoreTxn(t *testing.T) {
	t.Parallel()
	const acc = "acc-0123456789abcdef"
	agent := func(id, sub string) model.Agent {
		return model.Agent{ID: id, Type: model.AgentUser, Account: acc,
			Identities: []model.Identity{{IssuerID: "iss", Subject: sub}}, Grants: []model.Permission{{Action: "a", Resource: "x"}}}
	}
	tests := []struct {
		name string
		// end ends a transaction that put usr-…1.
		end     func(*Txn) error
		applied bool
	}{
		{"commit", func(t *Txn) error { _, err := t.Commit(7); return err }, true},
		{"abort", func(t *Txn) error { t.Abort(); return errors.New("aborted") }, false},
		{"an older revision", func(t *Txn) error { _, err := t.Commit(4); return err }, false},
		{"a failed change", func(t *Txn) error {
			t.PutAgent(model.Agent{Account: acc}) // no id: memdb refuses it
			t.PutAgent(agent("usr-0000000000000002", "s2"))
			_, err := t.Commit(7)
			return err
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New()
			if _, err := s.Apply(&Batch{Revision: 5}); err != nil {
				t.Fatal(err)
			}
			txn := s.Begin()
			txn.PutAgent(agent("usr-0000000000000001", "s1"))
			if _, ok := s.Snapshot().AgentByIdentity(acc, "iss", "s1"); ok {
				t.Fatal("a change is visible before the commit")
			}
			err := tc.end(txn)
			if (err == nil) != tc.applied {
				t.Fatalf("ending the transaction: %v", err)
			}
			txn.Abort() // ends nothing twice
			snap := s.Snapshot()
			_, ok := snap.AgentByIdentity(acc, "iss", "s1")
			if ok != tc.applied || (snap.Revision == 7) != tc.applied {
				t.Fatalf("applied: %v at revision %d, want %v", ok, snap.Revision, tc.applied)
			}
			if _, ok := snap.Agent("usr-0000000000000002"); ok {
				t.Fatal("a change after a failed one was applied")
			}
			// The state takes writes again.
			if _, err := s.Apply(&Batch{Revision: 8}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCoreIdentityTakeover: an identity resolves to the agent that put it
// last; removing or replacing an agent removes the identities that still
// point at it, and only those.
func TestCoreIdentityTakeover(t *testing.T) {
	t.Parallel()
	const a1, a2 = "acc-0000000000000001", "acc-0000000000000002"
	const x, y = "usr-0000000000000001", "usr-0000000000000002"
	agent := func(acc, id string, subs ...string) model.Agent {
		a := model.Agent{ID: id, Type: model.AgentUser, Account: acc}
		for _, s := range subs {
			a.Identities = append(a.Identities, model.Identity{IssuerID: "iss", Subject: s})
		}
		return a
	}
	s := New()
	rev := int64(0)
	apply := func(fn func(b *Batch)) *Snapshot {
		t.Helper()
		rev++
		b := &Batch{Revision: rev}
		fn(b)
		snap, err := s.Apply(b)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	owner := func(snap *Snapshot, acc, sub string) string {
		if a, ok := snap.AgentByIdentity(acc, "iss", sub); ok {
			return a.ID
		}
		return ""
	}
	snap := apply(func(b *Batch) { b.PutAgent(agent(a1, x, "s1", "s2")); b.PutAgent(agent(a1, y, "s2")) })
	if owner(snap, a1, "s1") != x || owner(snap, a1, "s2") != y {
		t.Fatal("the last put did not take the identity over")
	}
	snap = apply(func(b *Batch) { b.DeleteAgent(x) })
	if owner(snap, a1, "s1") != "" || owner(snap, a1, "s2") != y {
		t.Fatal("removing an agent removed another's identity, or kept its own")
	}
	// The same id put again, in another account: its old identities go.
	snap = apply(func(b *Batch) { b.PutAgent(agent(a1, x, "s1")); b.PutAgent(agent(a2, x, "s3")) })
	if owner(snap, a1, "s1") != "" || owner(snap, a2, "s3") != x {
		t.Fatal("replacing an agent kept its old identities")
	}
	if a, _ := snap.Agent(x); a.Account != a2 {
		t.Fatalf("agent %+v", a)
	}
	snap = apply(func(b *Batch) { b.DeleteAgent(y); b.DeleteAgent(x) })
	if owner(snap, a1, "s2") != "" || owner(snap, a2, "s3") != "" {
		t.Fatal("identities outlived their agents")
	}
}

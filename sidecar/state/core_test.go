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

package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const acc = "acc-0123456789abcdef"

// startEtcd starts an embedded etcd in a fresh directory and returns a
// client; both end with the test.
func startEtcd(t *testing.T, dir string) (*Embedded, *clientv3.Client) {
	t.Helper()
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(emb.Endpoint())
	if err != nil {
		emb.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); emb.Close() })
	return emb, c
}

func quiet() *slog.Logger {
	if os.Getenv("REPLICA_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func put(t *testing.T, c *clientv3.Client, key string, v any) int64 {
	t.Helper()
	r, err := c.Put(context.Background(), key, Encode(v))
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

func user(id, subject string, grants ...model.Permission) *AgentRecord {
	return &AgentRecord{ID: id, Type: model.AgentUser, Identities: []model.Identity{{IssuerID: "iss", Subject: subject}}, Allow: grants}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestReplicaListThenWatch: the replica loads what is there, then applies
// puts and deletes as they come, at their revisions.
func TestReplicaListThenWatch(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	put(t, c, l.Issuer(acc, "iss"), model.Issuer{ID: "iss", JSONKeysURL: "https://k.test/"})
	for _, u := range []*AgentRecord{user("usr-0000000000000001", "a"), user("usr-0000000000000002", "b")} {
		put(t, c, l.Agent(acc, u.ID), u)
	}
	// Records the state does not hold, and one that does not decode.
	put(t, c, l.Identity(acc, "iss", "a"), "usr-0000000000000001")
	if _, err := c.Put(context.Background(), l.Agent(acc, "usr-0000000000000003"), "{not json"); err != nil {
		t.Fatal(err)
	}
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet(), ProgressInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	waitFor(t, "the first load", func() bool { return r.Status().Ready })
	snap := st.Snapshot()
	if !snap.HasAccount(acc) || snap.Revision == 0 {
		t.Fatal("account not loaded")
	}
	if _, ok := snap.Issuer(acc, "iss"); !ok {
		t.Fatal("issuer not loaded")
	}
	if a, ok := snap.AgentByIdentity(acc, "iss", "b"); !ok || a.ID != "usr-0000000000000002" {
		t.Fatal("agent not loaded")
	}
	if r.Status().BadRecords != 1 {
		t.Fatalf("bad records: %+v", r.Status())
	}
	// Changes after the load.
	rev := put(t, c, l.Agent(acc, "usr-0000000000000001"), user("usr-0000000000000001", "a2", model.Permission{Action: "a", Resource: "r"}))
	if _, err := st.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	snap = st.Snapshot()
	if snap.Revision != rev {
		t.Fatalf("applied at %d, written at %d", snap.Revision, rev)
	}
	if _, ok := snap.AgentByIdentity(acc, "iss", "a"); ok {
		t.Fatal("the replaced identity still resolves")
	}
	if a, ok := snap.AgentByIdentity(acc, "iss", "a2"); !ok || len(a.Grants) != 1 || a.Grants[0].Resource != "/r/" {
		t.Fatalf("update not applied: %+v", a)
	}
	del, err := c.Delete(ctx, l.Issuer(acc, "iss"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WaitRevision(ctx, del.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Snapshot().Issuer(acc, "iss"); ok {
		t.Fatal("delete not applied")
	}
	// A write to a key the state does not hold still advances the
	// revision: every revision a write returns is one the state reaches.
	idRev := put(t, c, l.Identity(acc, "iss", "z"), "usr-0000000000000009")
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if _, err := st.WaitRevision(wctx, idRev); err != nil {
		t.Fatalf("the revision of an identity-index write was not reached: %v", err)
	}
	// A transaction is applied as one batch: no snapshot shows half of it.
	txn, err := c.Txn(ctx).Then(
		clientv3.OpDelete(l.Agent(acc, "usr-0000000000000002")),
		clientv3.OpPut(l.Agent(acc, "usr-0000000000000004"), Encode(user("usr-0000000000000004", "b"))),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	snap, _ = st.WaitRevision(ctx, txn.Header.Revision)
	if a, ok := snap.AgentByIdentity(acc, "iss", "b"); !ok || a.ID != "usr-0000000000000004" {
		t.Fatalf("identity moved in one transaction: %+v %v", a, ok)
	}
}

// TestReplicaCompactedWatch: when the history the watch needs was compacted,
// the replica lists again and applies the difference, deletions included:
// no change is skipped.
func TestReplicaCompactedWatch(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	ctx := context.Background()
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	put(t, c, l.Agent(acc, "usr-0000000000000001"), user("usr-0000000000000001", "a"))
	put(t, c, l.Agent(acc, "usr-0000000000000002"), user("usr-0000000000000002", "b"))
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet()})
	rev, err := r.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// While the replica is not watching: a delete, an update, a create,
	// then a compaction past all of them.
	if _, err := c.Delete(ctx, l.Agent(acc, "usr-0000000000000001")); err != nil {
		t.Fatal(err)
	}
	put(t, c, l.Agent(acc, "usr-0000000000000002"), user("usr-0000000000000002", "b2"))
	last := put(t, c, l.Agent(acc, "usr-0000000000000003"), user("usr-0000000000000003", "c"))
	if _, err := c.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.watch(wctx, rev); err == nil || !isCompacted(err) {
		t.Fatalf("watch from a compacted revision: %v", err)
	}
	// Run does what the test did by hand, then lists again.
	done := make(chan struct{})
	go func() { r.Run(wctx); close(done) }()
	waitFor(t, "the relist", func() bool { return st.Revision() >= last })
	cancel()
	<-done
	snap := st.Snapshot()
	if _, ok := snap.Agent("usr-0000000000000001"); ok {
		t.Fatal("the deletion was skipped")
	}
	if _, ok := snap.AgentByIdentity(acc, "iss", "b2"); !ok {
		t.Fatal("the update was skipped")
	}
	if _, ok := snap.Agent("usr-0000000000000003"); !ok {
		t.Fatal("the create was skipped")
	}
	if len(r.applied) != 3 {
		t.Fatalf("the replica tracks %d keys", len(r.applied))
	}
}

// TestReplicaStaleWhileEtcdDown: with etcd gone, the state keeps answering
// from its last revision and the status says it is stale; when etcd is back
// the replica catches up and is ready again.
func TestReplicaStaleWhileEtcdDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(emb.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := NewLayout("")
	put(t, c, l.Agent(acc, "usr-0000000000000001"), user("usr-0000000000000001", "a"))
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet(), ProgressInterval: 50 * time.Millisecond, RetryInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	waitFor(t, "ready", func() bool { return r.Status().Ready })
	rev := st.Revision()
	emb.Close()
	waitFor(t, "stale", func() bool { return !r.Status().Ready })
	s := r.Status()
	if s.Revision != rev || !strings.Contains(s.Reason, "stale") {
		t.Fatalf("status while etcd is down: %+v", s)
	}
	if _, ok := st.Snapshot().Agent("usr-0000000000000001"); !ok {
		t.Fatal("the state was lost")
	}
	emb, err = StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	waitFor(t, "ready again", func() bool { return r.Status().Ready })
	next := put(t, c, l.Agent(acc, "usr-0000000000000002"), user("usr-0000000000000002", "b"))
	if _, err := st.WaitRevision(ctx, next); err != nil {
		t.Fatal(err)
	}
}

// TestEmbeddedRestartKeepsData: the embedded server keeps everything across
// a restart, and refuses a data directory another server is using.
func TestEmbeddedRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartEmbedded(EmbeddedConfig{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "another process is using this data directory") {
		t.Fatalf("a second server on the same directory: %v", err)
	}
	c, err := Dial(emb.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := c.Put(context.Background(), "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), "v"); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	emb.Close()
	_, c = startEtcd(t, dir)
	resp, err := c.Get(context.Background(), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 50 {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func isCompacted(err error) bool { return err != nil && strings.Contains(err.Error(), "compacted") }

// TestReplicaBadRecordsFailClosed: a record that does not decode, or that
// breaks the state's rules, is left out and removes what the state held
// under its key, and replication goes on past it.
func TestReplicaBadRecordsFailClosed(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	strong := user("usr-0000000000000001", "a", model.Permission{Action: "*", Resource: "/"})
	put(t, c, l.Agent(acc, strong.ID), strong)
	// A record memdb would refuse: an identity with an empty subject.
	put(t, c, l.Agent(acc, "usr-0000000000000002"), user("usr-0000000000000002", ""))
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet(), ProgressInterval: 50 * time.Millisecond})
	go r.Run(ctx)
	waitFor(t, "the first load despite a bad record", func() bool { return r.Status().Ready })
	if _, ok := st.Snapshot().Agent("usr-0000000000000002"); ok {
		t.Fatal("the bad record was loaded")
	}
	// The strong agent's record is replaced by one that does not decode:
	// its old grants must not survive.
	bad, err := c.Put(ctx, l.Agent(acc, strong.ID), `{"id":`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WaitRevision(ctx, bad.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Snapshot().Agent(strong.ID); ok {
		t.Fatal("an agent whose record no longer decodes keeps its grants")
	}
	// An identity-breaking update arrives by watch; replication goes on.
	put(t, c, l.Agent(acc, "usr-0000000000000003"), user("usr-0000000000000003", ""))
	next := put(t, c, l.Agent(acc, "usr-0000000000000004"), user("usr-0000000000000004", "d"))
	if _, err := st.WaitRevision(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Snapshot().AgentByIdentity(acc, "iss", "d"); !ok {
		t.Fatal("replication stopped at a bad record")
	}
	waitFor(t, "ready after bad records", func() bool { return r.Status().Ready })
	if s := r.Status(); s.BadRecords != 3 {
		t.Fatalf("bad records counted: %+v", s)
	}
}

// TestReplicaListsInPages: a store larger than a page loads whole, at the
// revision of its first page, and a list again applies exactly the
// difference; records that do not decode are left out wherever they fall.
func TestReplicaListsInPages(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	ctx := context.Background()
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	put(t, c, l.Issuer(acc, "iss"), model.Issuer{ID: "iss", JSONKeysURL: "https://k.test/"})
	const n = 23
	id := func(i int) string { return fmt.Sprintf("usr-%016x", i) }
	for i := range n {
		if i == 9 {
			if _, err := c.Put(ctx, l.Agent(acc, id(i)), `{"type":`); err != nil {
				t.Fatal(err)
			}
			continue
		}
		put(t, c, l.Agent(acc, id(i)), user(id(i), fmt.Sprint("s", i), model.Permission{Action: "a", Resource: fmt.Sprint("/r", i)}))
	}
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet(), PageSize: 4})
	rev, err := r.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check := func(missing map[int]bool) {
		t.Helper()
		snap := st.Snapshot()
		for i := range n {
			a, ok := snap.AgentByIdentity(acc, "iss", fmt.Sprint("s", i))
			if ok == missing[i] || (ok && (a.ID != id(i) || len(a.Grants) != 1 || a.Grants[0].Resource != fmt.Sprintf("/r%d/", i))) {
				t.Fatalf("agent %d: %+v, %v", i, a, ok)
			}
		}
	}
	check(map[int]bool{9: true})
	if st.Revision() != rev || r.Status().BadRecords != 1 || len(r.applied) != n+2 {
		t.Fatalf("revision %d (listed %d), status %+v, %d keys", st.Revision(), rev, r.Status(), len(r.applied))
	}
	// Changes while not watching: a listing again applies only them.
	if _, err := c.Delete(ctx, l.Agent(acc, id(3))); err != nil {
		t.Fatal(err)
	}
	put(t, c, l.Agent(acc, id(9)), user(id(9), "s9", model.Permission{Action: "a", Resource: "/r9"}))
	snap := st.Snapshot()
	if _, err := r.list(ctx); err != nil {
		t.Fatal(err)
	}
	check(map[int]bool{3: true})
	same, _ := snap.Agent(id(20))
	if again, _ := st.Snapshot().Agent(id(20)); again != same {
		t.Fatal("an unchanged record was applied again")
	}
}

// recorder is a Follower that keeps what it was given.
type recorder struct {
	mu      sync.Mutex
	resets  int
	rev     int64
	records map[string]string
}

func (f *recorder) Reset(rev int64, records []Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets++
	f.rev = rev
	f.records = map[string]string{}
	for _, r := range records {
		f.records[r.Key] = string(r.Value)
	}
}

func (f *recorder) Advance(rev int64, changes []Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev <= f.rev {
		panic(fmt.Sprintf("advance to %d after %d", rev, f.rev))
	}
	f.rev = rev
	for _, r := range changes {
		if r.Deleted {
			delete(f.records, r.Key)
		} else {
			f.records[r.Key] = string(r.Value)
		}
	}
}

func (f *recorder) at(rev int64) (map[string]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.records), f.rev >= rev
}

// TestReplicaFollowers: a follower gets every record of its kind at the
// list's revision, then each change in order, and every revision the state
// reaches, through the replica's one watch.
func TestReplicaFollowers(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	put(t, c, l.Hook(acc, "a"), HookRecord{SHA256: "1"})
	f := &recorder{}
	st := state.New()
	r := NewReplica(ReplicaConfig{Client: c, State: st, Logger: quiet(), ProgressInterval: 50 * time.Millisecond,
		Followers: map[string]Follower{KindHook: f}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	waitFor(t, "the first load", func() bool { return r.Status().Ready })
	got, _ := f.at(0)
	if len(got) != 1 || !strings.Contains(got[l.Hook(acc, "a")], `"1"`) {
		t.Fatalf("after the list the follower holds %v", got)
	}
	// A change of another kind moves the follower's revision on too.
	rev := put(t, c, l.Agent(acc, "usr-0000000000000001"), user("usr-0000000000000001", "a"))
	waitFor(t, "the follower at the agent's revision", func() bool { _, ok := f.at(rev); return ok })
	put(t, c, l.Hook(acc, "b"), HookRecord{SHA256: "2"})
	del, err := c.Delete(ctx, l.Hook(acc, "a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the follower at the delete's revision", func() bool { _, ok := f.at(del.Header.Revision); return ok })
	if got, _ := f.at(0); len(got) != 1 || got[l.Hook(acc, "b")] == "" {
		t.Fatalf("after a put and a delete the follower holds %v", got)
	}
	if s := st.Snapshot().Revision; s != del.Header.Revision {
		t.Fatalf("the state is at %d, the follower at %d", s, del.Header.Revision)
	}
}

// TestReplicaQuietStoreStaysReady: with a follower attached and nothing
// written, the replica stays ready for many times StaleAfter: etcd's
// progress notifications keep coming on the one watch. (A second watch
// starting past the store's revision on the same stream stopped them.)
func TestReplicaQuietStoreStaysReady(t *testing.T) {
	t.Parallel()
	_, c := startEtcd(t, t.TempDir())
	l := NewLayout("")
	put(t, c, l.Account(acc), AccountRecord{ID: acc})
	put(t, c, l.Hook(acc, "a"), HookRecord{SHA256: "1"})
	// StaleAfter leaves room for a busy machine's pauses; without progress
	// notifications the lag grows past it all the same.
	r := NewReplica(ReplicaConfig{Client: c, State: state.New(), Logger: quiet(), ProgressInterval: 100 * time.Millisecond,
		StaleAfter: time.Second, Followers: map[string]Follower{KindHook: &recorder{}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	waitFor(t, "the first load", func() bool { return r.Status().Ready })
	// 4 × StaleAfter.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s := r.Status(); !s.Ready {
			t.Fatalf("a quiet store made the replica not ready: %+v", s)
		}
	}
	if s := r.Status(); s.Restarts != 0 {
		t.Fatalf("the watch restarted on a quiet store: %+v", s)
	}
}

// TestEmbeddedFailed: a server that stops on its own says so on Failed;
// one stopped by Close does not.
func TestEmbeddedFailed(t *testing.T) {
	t.Parallel()
	emb, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	emb.etcd.Server.HardStop()
	select {
	case err := <-emb.Failed():
		if !strings.Contains(err.Error(), "stopped") {
			t.Fatalf("Failed says %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a stopped server did not say so on Failed")
	}
	emb2, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	emb2.Close()
	select {
	case err := <-emb2.Failed():
		t.Fatalf("a closed server says it failed: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

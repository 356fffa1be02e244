//go:build linux

package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
)

// restoreSection is the section of docs/deploy.md whose shell blocks this
// test runs: the snapshot, then the restore.
const restoreSection = "Back up and restore the embedded store"

// TestRestoreFromSnapshot runs the backup and restore of docs/deploy.md as
// written, with etcdctl: a snapshot of a running node's embedded store,
// restored into a new data directory after the node stopped, and a node
// started on it has the users the snapshot held, decides by their grants,
// lacks what was written after the snapshot, and takes writes.
func TestRestoreFromSnapshot(t *testing.T) {
	integration(t)
	if _, err := exec.LookPath("etcdctl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcdctl is not on PATH (CI must install it, see .ci/run): %v", err)
		}
		t.Skipf("etcdctl is not on PATH (apt-get install etcd-client): %v", err)
	}
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sectionBlocks(string(doc), restoreSection)
	if len(blocks) != 2 {
		t.Fatalf("docs/deploy.md, %q: %d shell blocks, want 2 (the snapshot, the restore)", restoreSection, len(blocks))
	}
	if !strings.Contains(string(doc), `warden serve --data-dir "$NEW"`) {
		t.Fatalf(`docs/deploy.md no longer says to start warden serve --data-dir "$NEW", which this test does`)
	}

	dir := t.TempDir()
	root := newRootKey(t)
	w := startWarden(t, "warden", filepath.Join(dir, "data"), root.bootstrapFlags(t, dir)...)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	rootTok := root.token(t, w.base)
	alice := newAgentKey(t, usersIssuer, "alice", "k1")
	addIssuer(t, w, rootTok, acc, alice)
	var user struct {
		ID string `json:"id"`
	}
	rev := revision(t, w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/"), &user))
	var before any
	w.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/user/"+user.ID, rootTok, nil, &before)

	// The snapshot, of the running node.
	snap := filepath.Join(dir, "warden.db")
	out := runDocBlock(t, dir, blocks[0], "DATA="+w.dataDir, "SNAP="+snap)
	if fi, err := os.Stat(snap); err != nil || fi.Size() == 0 {
		t.Fatalf("the snapshot block wrote no snapshot (%v):\n%s", err, out)
	}
	// A write after the snapshot: the restore takes the store back before it.
	bob := newAgentKey(t, usersIssuer, "bob", "k1")
	var later struct {
		ID string `json:"id"`
	}
	w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok, userBody("Bob", bob, "function:get", "/account/"+acc+"/"), &later)
	if code := w.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}

	// The restore, into a new data directory, and a node on it with the
	// flags the first one had (and its base URL, the tokens' audience).
	restored := filepath.Join(dir, "restored")
	runDocBlock(t, dir, blocks[1], "SNAP="+snap, "NEW="+restored)
	r := startWarden(t, "restored warden", restored, append(root.bootstrapFlags(t, dir), "--base-url", w.base)...)
	r.waitReady(t, rev)
	if got := r.servingAccount(t); got != acc {
		t.Fatalf("the restored node serves account %q, want %q", got, acc)
	}
	if n := len(r.logLines("bootstrapped a new store")); n != 0 {
		t.Errorf("the restored node bootstrapped a new store")
	}
	var after any
	r.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/user/"+user.ID, rootTok, nil, &after)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the user after the restore: %v; before: %v", after, before)
	}
	resource := "/account/" + acc + "/subscription/sub-0000000000000001/function/f/"
	if d := r.check(t, alice.token(t, r.base), "function:get", resource, 0); !d.Allow || d.Agent.ID != user.ID || d.Agent.Type != model.AgentUser {
		t.Errorf("check for the user after the restore: %+v; want allowed by its grant", d)
	}
	if d := r.check(t, alice.token(t, r.base), "function:put", resource, 0); d.Allow {
		t.Errorf("check of an action the user was not granted: %+v; want denied", d)
	}
	if got := r.call(t, http.MethodGet, "/v1/account/"+acc+"/user/"+later.ID, rootTok, nil); got.status != http.StatusNotFound {
		t.Errorf("the user written after the snapshot: %s; want 404", got)
	}
	carol := newAgentKey(t, usersIssuer, "carol", "k1")
	if resp := r.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok, userBody("Carol", carol, "", ""), nil); revision(t, resp) <= rev {
		t.Errorf("a write on the restored store answered revision %d, not after %d", revision(t, resp), rev)
	}
}

// runDocBlock runs a shell block of the docs with bash, in dir, with the
// variables given, failing the test if it fails.
func runDocBlock(t *testing.T, dir, block string, vars ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+block)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), vars...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the block of docs/deploy.md failed: %v\n%s\n%s", err, block, out)
	}
	t.Logf("%s%s", block, out)
	return string(out)
}

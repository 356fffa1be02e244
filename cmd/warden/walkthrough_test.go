//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeWalkthrough runs the shell blocks of README.md's walk-through,
// as written, against the real binary: in a directory laid out as the top
// of a clone after `make run` (bin/warden, warden-data/), with a server on
// a free port instead of 7800, which nothing in the blocks names.
func TestReadmeWalkthrough(t *testing.T) {
	integration(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the walk-through needs openssl")
		}
		t.Skip("openssl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkthroughBlocks(string(readme))
	if len(blocks) != 6 {
		t.Fatalf("found %d shell blocks in the walk-through, want 6", len(blocks))
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(wardenBinary(t), filepath.Join(dir, "bin", "warden")); err != nil {
		t.Fatal(err)
	}
	w := startWarden(t, "warden", filepath.Join(dir, "warden-data"))
	w.waitReady(t, 0)

	// `go run ./sdk/...` runs from the top of the clone, which here is
	// the repository, not the test's directory.
	shim := `go() { if [ "$1" = run ]; then (cd "$REPO" && command go "$@"); else command go "$@"; fi; }` + "\n"
	script := "set -euo pipefail\n" + shim + strings.Join(blocks, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), "WARDEN_CONFIG_DIR="+filepath.Join(dir, "config"), "REPO="+repo)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\n%s\nserver log:\n%s", err, out, w.proc.out.String())
	}
	text := string(out)
	t.Logf("the walk-through's output:\n%s", text)
	for _, want := range []string{
		"Profile 'default' acts as clt-",
		"Issuer:  https://idp.example.com",
		"https://accounts.example.com/.well-known/jwks.json",
		"Identity:    https://idp.example.com  ada",
		"Profile 'ci' acts as clt-",
		"allowed: client clt-",
		"denied (403): no grant allows 'function:put'",
		"denied (exit 3)",
		"by its grant of 'function:*'",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, text)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "config", "keys", "ci.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the ci profile's key file: %v %v", fi, err)
	}
}

// walkthroughBlocks returns the ```sh blocks of the README's walk-through
// section, unindented.
func walkthroughBlocks(readme string) []string {
	_, section, _ := strings.Cut(readme, "\n## Walk-through\n")
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		indent := lines[i][:strings.Index(lines[i], "```")]
		var b strings.Builder
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.WriteString(strings.TrimPrefix(lines[i], indent) + "\n")
		}
		blocks = append(blocks, b.String())
	}
	return blocks
}

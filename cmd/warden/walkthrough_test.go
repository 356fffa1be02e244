//go:build linux

package main

import (
	"context"
	"net"
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
	for _, tool := range []string{"openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the walk-through needs %s", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sectionBlocks(string(readme), "Walk-through")
	routes := sectionBlocks(string(readme), "Protect your app's routes")
	if len(blocks) != 8 || len(routes) != 3 {
		t.Fatalf("found %d shell blocks in the walk-through and %d in the routes section, want 8 and 3", len(blocks), len(routes))
	}
	blocks = append(blocks, routes...)
	dir, tmp := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(wardenBinary(t), filepath.Join(dir, "bin", "warden")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "echoapp"), "../../sdk/examples/echoapp").CombinedOutput(); err != nil {
		t.Fatalf("building echoapp: %v\n%s", err, out)
	}
	w := startWarden(t, "warden", filepath.Join(dir, "warden-data"))
	w.waitReady(t, 0)

	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), "WARDEN_CONFIG_DIR="+filepath.Join(dir, "config"), "TMPDIR="+tmp,
		"APP="+freeAddr(t), "GUARD="+freeAddr(t))
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
		`"allow":true,"status":200`,
		"allowed: user usr-",
		"Key 'idp-2' added to issuer 'https://idp.example.com': tokens signed with any of its 2 keys pass.",
		`denied (401): unknown key id "idp-1"`,
		"the old key is refused (exit 3)",
		// Protect your app's routes.
		"Route table 'app' stored: 2 routes",
		"requirements: function:get on /account/",
		"decision:     allowed (200)",
		"the table's default denies",
		"refused (exit 3)",
		"no token: 401",
		"the app got GET /account/",
		"/function/hello as client clt-",
		"climbing out: 400",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, text)
		}
	}
	// The rotation: both of Ada's tokens passed while both keys were there.
	if n := strings.Count(text, "allowed: user usr-"); n != 3 {
		t.Errorf("Ada's tokens were allowed %d times, want 3 (one before the rotation, two during it):\n%s", n, text)
	}
	// The used root init token's file is gone, and no key was left in the
	// clone or in the temporary directory.
	if _, err := os.Stat(filepath.Join(dir, "warden-data", "root-init-token")); !os.IsNotExist(err) {
		t.Errorf("the used root init token's file is still there: %v", err)
	}
	for _, d := range []string{dir, tmp} {
		_ = filepath.WalkDir(d, func(path string, de os.DirEntry, err error) error {
			if err == nil && (strings.HasSuffix(path, ".key") || strings.HasSuffix(path, ".pem") && !strings.Contains(path, "config")) {
				t.Errorf("the walk-through left %s behind", path)
			}
			return nil
		})
	}
	if fi, err := os.Stat(filepath.Join(dir, "config", "keys", "ci.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the ci profile's key file: %v %v", fi, err)
	}
}

// sectionBlocks returns the ```sh blocks of a section of the README,
// unindented.
func sectionBlocks(readme, title string) []string {
	_, section, _ := strings.Cut(readme, "\n## "+title+"\n")
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

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

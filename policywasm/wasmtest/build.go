// Package wasmtest builds WebAssembly modules from Go sources for tests:
// policy hooks (GOOS=wasip1, -buildmode=c-shared), cached by the sha256 of
// their sources so that a test run rebuilds only what changed.
package wasmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu sync.Mutex
	built   = map[string][]byte{}
)

// Build builds the Go main package in dir (relative to the test's package,
// like "testdata/guests/allow") as a hook module. kitDirs are hashed with
// it, so that a change to the guest kit rebuilds it too.
func Build(t testing.TB, dir string, kitDirs ...string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	src := filepath.Clean(dir)
	if wasm, ok := built[src]; ok {
		return wasm
	}
	name := filepath.Base(src)
	key := sourceHash(t, append([]string{src}, kitDirs...)...)
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		cacheDir = os.TempDir()
	}
	out := filepath.Join(cacheDir, "warden-test-guests", name+"-"+key+".wasm")
	if wasm, err := os.ReadFile(out); err == nil {
		built[src] = wasm
		return wasm
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := out + ".tmp"
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp, "./"+filepath.ToSlash(src))
	if filepath.IsAbs(src) || strings.HasPrefix(src, "..") {
		cmd = exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp, src)
	}
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guest %s: %v\n%s", name, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[src] = wasm
	return wasm
}

// sourceHash hashes the .go files under dirs.
func sourceHash(t testing.TB, dirs ...string) string {
	h := sha256.New()
	var files []string
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && filepath.Ext(p) == ".go" {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Hook builds the hook whose sources are in dir under policywasm (like
// "examples/tenant" or "testdata/guests/allow"), from any package's tests:
// it finds policywasm beside this file, and hashes the guest kit and the
// ABI with the hook.
func Hook(t testing.TB, dir string) []byte {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("wasmtest: cannot find its own sources")
	}
	root := filepath.Dir(filepath.Dir(self)) // policywasm
	return Build(t, filepath.Join(root, dir), filepath.Join(root, "guest"), filepath.Join(root, "abi"))
}

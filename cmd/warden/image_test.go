package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// imageConfig is what the test reads of `podman image inspect`.
type imageConfig struct {
	Config struct {
		User         string
		Env          []string
		Entrypoint   []string
		Cmd          []string
		Volumes      map[string]struct{}
		ExposedPorts map[string]struct{}
		Labels       map[string]string
	}
	HealthCheck *struct{ Test []string }
}

// TestImage builds the container image as `make image` does, reads its
// configuration, and runs the binary it holds: with podman run where the
// machine allows it, else taken out of the image.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image; skipped under -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary runs on Linux")
	}
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (apt-get install podman): the container image is not tested")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Containerfile")); err != nil {
		t.Fatal(err)
	}
	probePodman(t, podman)

	tag := "localhost/warden-imagetest:" + randomHex(6)
	const version = "v0.0.0-imagetest"
	commit := randomHex(20)
	t.Cleanup(func() { removeImage(t, podman, tag) })
	build := exec.Command(mk, "-C", root, "image", "IMAGE="+tag, "IMAGECTX="+t.TempDir(), "VERSION="+version, "COMMIT="+commit)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	cfg := inspectImage(t, podman, tag)
	c := cfg.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q; want 65532:65532, not root", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/warden"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q, cmd %q; want [/warden] [serve]", c.Entrypoint, c.Cmd)
	}
	if cfg.HealthCheck == nil || !slices.Equal(cfg.HealthCheck.Test, []string{"CMD", "/warden", "health"}) {
		t.Errorf("health check %+v; want CMD /warden health", cfg.HealthCheck)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("volumes %v; want /data", c.Volumes)
	}
	for _, p := range []string{"7800/tcp", "7801/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("exposed ports %v; want %s", c.ExposedPorts, p)
		}
	}
	for _, kv := range []string{"WARDEN_DATA_DIR=/data", "WARDEN_LISTEN=0.0.0.0:7800", "WARDEN_DIAG_LISTEN=0.0.0.0:7801"} {
		if !slices.Contains(c.Env, kv) {
			t.Errorf("environment %q; want %s", c.Env, kv)
		}
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.source":   "https://github.com/wardenauthz/warden",
		"org.opencontainers.image.title":    "warden",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q; want %q", k, c.Labels[k], want)
		}
	}

	files, bin := exportImage(t, podman, tag)
	checkImageFiles(t, files)
	wantVersion := fmt.Sprintf("warden %s (commit %s, ", version, commit[:12])
	out, err := exec.Command(podman, "run", "--rm", tag, "version").CombinedOutput()
	switch {
	case err == nil:
		if !strings.HasPrefix(string(out), wantVersion) {
			t.Errorf("podman run %s version: %q; want %q…", tag, out, wantVersion)
		}
	default:
		t.Logf("podman run is refused here (%v: %s); running the image's binary outside a container instead", err, lastLine(out))
	}
	checkStatic(t, bin)
	path := filepath.Join(t.TempDir(), "warden")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(path, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), wantVersion) {
		t.Errorf("warden version: %v, %q; want %q…", err, out, wantVersion)
	}
	out, err = exec.Command(path, "version", "-o", "json").Output()
	var b buildInfo
	if err != nil || json.Unmarshal(out, &b) != nil || b.Version != version || b.Commit != commit {
		t.Errorf("warden version -o json: %v, %s; want version %s, commit %s", err, out, version, commit)
	}
	checkHealthCheck(t, path, c.Env)
}

// probePodman skips the test where podman cannot build an image at all,
// so that a failure of make image is the image's own.
func probePodman(t *testing.T, podman string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM scratch\nCOPY Containerfile /probe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "localhost/warden-imagetest-probe:" + randomHex(6)
	out, err := exec.Command(podman, "build", "--layers=false", "-t", tag, dir).CombinedOutput()
	if err != nil {
		t.Skipf("podman cannot build images here: %v: %s", err, lastLine(out))
	}
	removeImage(t, podman, tag)
}

// removeImage removes an image and any container made from it.
func removeImage(t *testing.T, podman, tag string) {
	if out, err := exec.Command(podman, "rmi", "--force", tag).CombinedOutput(); err != nil && !strings.Contains(string(out), "image not known") {
		t.Errorf("podman rmi %s: %v: %s", tag, err, out)
	}
}

func inspectImage(t *testing.T, podman, tag string) imageConfig {
	out, err := exec.Command(podman, "image", "inspect", tag).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var cfgs []imageConfig
	if err := json.Unmarshal(out, &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("podman image inspect: %v: %s", err, out)
	}
	return cfgs[0]
}

// exportImage reads the file system of a container made from the image
// (made, not run): its files by path, and the bytes of /warden.
func exportImage(t *testing.T, podman, tag string) (map[string]*tar.Header, []byte) {
	out, err := exec.Command(podman, "create", tag).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command(podman, "rm", "--force", id).Run()
	archive, err := exec.Command(podman, "export", id).Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	files := map[string]*tar.Header{}
	var bin []byte
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, bin
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.Trim(filepath.Clean(h.Name), "/")
		files[name] = h
		if name == "/warden" {
			if bin, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkImageFiles checks what the image holds and who owns it.
func checkImageFiles(t *testing.T, files map[string]*tar.Header) {
	bin, ok := files["/warden"]
	if !ok {
		t.Fatalf("no /warden in the image: %v", slices.Sorted(maps.Keys(files)))
	}
	if bin.Uid != 0 || bin.FileInfo().Mode().Perm()&0o022 != 0 {
		t.Errorf("/warden is owned by %d with mode %v; want root's, writable by no one else", bin.Uid, bin.FileInfo().Mode())
	}
	data, ok := files["/data"]
	switch {
	case !ok || data.Typeflag != tar.TypeDir:
		t.Errorf("no directory /data in the image")
	case data.Uid != 65532 || data.Gid != 65532 || data.FileInfo().Mode().Perm() != 0o700:
		t.Errorf("/data is owned by %d:%d with mode %v; want 65532:65532 and 0700", data.Uid, data.Gid, data.FileInfo().Mode().Perm())
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if _, ok := files["/etc/ssl/certs/ca-certificates.crt"]; !ok {
			t.Errorf("this machine has CA certificates, but the image does not")
		}
	}
}

// checkStatic: the binary asks for no dynamic loader and no shared
// library, as an image with nothing else needs.
func checkStatic(t *testing.T, bin []byte) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("the image's /warden is not an ELF file: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the image's /warden is linked dynamically (program header %v)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the image's /warden needs %v", libs)
	}
}

// checkHealthCheck runs the image's health check (warden health, in the
// image's environment) against a diagnostics listener on the loopback, at
// the port the image's WARDEN_DIAG_LISTEN names on 0.0.0.0, moved to a
// free one.
func checkHealthCheck(t *testing.T, bin string, env []string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"ready": true, "revision": 7}`)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	cmd := exec.Command(bin, "health")
	for _, kv := range env {
		if strings.HasPrefix(kv, "WARDEN_DIAG_LISTEN=") {
			host, _, _ := net.SplitHostPort(strings.TrimPrefix(kv, "WARDEN_DIAG_LISTEN="))
			kv = "WARDEN_DIAG_LISTEN=" + net.JoinHostPort(host, port)
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ready at revision 7") {
		t.Errorf("the health check in the image's environment: %v: %s", err, out)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

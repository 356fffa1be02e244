package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// imageDefaults are what Warden's image sets (Containerfile): the
// listeners on every interface, the data in /data.
var imageDefaults = map[string]string{
	"listen":      "0.0.0.0:7800",
	"diag-listen": "0.0.0.0:7801",
	"data-dir":    "/data",
}

// tlsFlags are the flags of Warden's TLS support that the manifests use.
var tlsFlags = []string{"--tls-cert", "--tls-key", "--etcd-cacert", "--etcd-cert", "--etcd-key"}

// build is the warden binary, built once from the repository two levels
// up, and the flags its `serve --help` lists: true for those that take a
// value.
var build struct {
	once  sync.Once
	dir   string
	bin   string
	flags map[string]bool
	err   error
}

func wardenBinary(t *testing.T) (string, map[string]bool) {
	t.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "warden-k8s-"); build.err != nil {
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bin := filepath.Join(build.dir, "warden")
		cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "./cmd/warden")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/warden: %v\n%s", err, out)
			return
		}
		out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("warden serve --help: %v\n%s", err, out)
			return
		}
		build.bin, build.flags = bin, parseHelp(string(out))
		if len(build.flags) < 10 {
			build.err = fmt.Errorf("warden serve --help lists %d flags:\n%s", len(build.flags), out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin, build.flags
}

// parseHelp reads the flags of Go's flag usage: "  -name type" for a flag
// that takes a value, "  -name" for a boolean one.
func parseHelp(usage string) map[string]bool {
	flags := map[string]bool{}
	for _, line := range strings.Split(usage, "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		line, _, _ = strings.Cut(line, "\t")
		f := strings.Fields(line)
		flags[strings.TrimPrefix(f[0], "-")] = len(f) > 1
	}
	return flags
}

// isWarden says whether a container runs Warden's image.
func isWarden(c *corev1.Container) bool {
	name := c.Image
	if i := strings.IndexAny(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name) == "warden"
}

// wardenArgs is a Warden container's `serve` command line, parsed.
type wardenArgs struct {
	values  map[string]string // by flag name, from the arguments, else WARDEN_* variables
	unknown []string          // flags that `serve --help` does not list
}

// value is a flag's value as the container sets it, else the image's
// default, else "".
func (a wardenArgs) value(name string) string {
	if v, ok := a.values[name]; ok {
		return v
	}
	return imageDefaults[name]
}

func parseWardenArgs(t *testing.T, c *corev1.Container, flags map[string]bool) wardenArgs {
	t.Helper()
	a := wardenArgs{values: map[string]string{}}
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/warden"}) {
		t.Errorf("container %s: command %v; leave it to the image's entrypoint, /warden", c.Name, c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("container %s: the arguments must start with serve: %v", c.Name, c.Args)
		return a
	}
	args := c.Args[1:]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name := strings.TrimLeft(arg, "-")
		if d := len(arg) - len(name); d < 1 || d > 2 || name == "" {
			t.Errorf("container %s: argument %q is not a flag", c.Name, arg)
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		takesValue, known := flags[name]
		if !known {
			a.unknown = append(a.unknown, "--"+name)
		}
		switch {
		case hasValue:
		case takesValue && i+1 < len(args):
			i++
			value = args[i]
		case takesValue:
			t.Errorf("container %s: --%s has no value", c.Name, name)
		default:
			value = "true"
		}
		a.values[name] = value
	}
	for _, e := range c.Env {
		name, ok := strings.CutPrefix(e.Name, "WARDEN_")
		if !ok {
			continue
		}
		flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if _, known := flags[flag]; !known {
			a.unknown = append(a.unknown, e.Name+" (--"+flag+")")
		}
		if _, set := a.values[flag]; !set && e.ValueFrom == nil {
			a.values[flag] = e.Value
		}
	}
	return a
}

// checkWardens checks each Warden container of the workload against
// `warden serve`.
func (m *manifests) checkWardens(t *testing.T, w workload) {
	for i := range w.template.Spec.Containers {
		c := &w.template.Spec.Containers[i]
		if isWarden(c) {
			t.Run(c.Name, func(t *testing.T) { m.checkWarden(t, w, c) })
		}
	}
}

func (m *manifests) checkWarden(t *testing.T, w workload, c *corev1.Container) {
	bin, flags := wardenBinary(t)
	a := parseWardenArgs(t, c, flags)
	if len(a.unknown) > 0 {
		msg := fmt.Sprintf("%s/%s, container %s: `warden serve --help` lists no %s", m.dir, w.file, c.Name, strings.Join(a.unknown, ", "))
		for _, u := range a.unknown {
			if slices.Contains(tlsFlags, u) {
				msg += ". The TLS flags (" + strings.Join(tlsFlags, ", ") + ") come with Warden's TLS support, " +
					"which these manifests need: run this test on a tree that has it"
				break
			}
		}
		t.Error(msg)
	} else if len(c.Args) > 0 {
		// The values parse as their flags take them (durations, numbers,
		// lists); --help stops before the configuration is completed.
		out, err := exec.Command(bin, append(slices.Clone(c.Args), "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("container %s: warden %s --help: %v\n%s", c.Name, strings.Join(c.Args, " "), err, out)
		}
	}
	m.checkDiag(t, w, c, a)
	checkListeners(t, c, a)
	m.checkDataDir(t, w, c, a)
	m.checkRoutes(t, w, c, a, bin)
	if (a.value("tls-cert") == "") != (a.value("tls-key") == "") {
		t.Errorf("container %s: --tls-cert and --tls-key go together", c.Name)
	}
}

// checkDiag: the diagnostics listener is on every interface, on the port
// named diag, which the probes (/readyz, /healthz) and the scrape
// annotations use.
func (m *manifests) checkDiag(t *testing.T, w workload, c *corev1.Container, a wardenArgs) {
	addr, ok := a.values["diag-listen"]
	if !ok {
		t.Errorf("container %s: give --diag-listen (or WARDEN_DIAG_LISTEN): the probes and the scrape annotations name its port", c.Name)
		return
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		t.Errorf("container %s: --diag-listen %q: %v", c.Name, addr, err)
		return
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("container %s: --diag-listen %q: the kubelet's probes and Prometheus reach the pod's address, not %s", c.Name, addr, host)
	}
	named, found := containerPort(c, intstr.FromString("diag"))
	if !found || named != port {
		t.Errorf("container %s: the port named diag is %d (found: %v), --diag-listen's is %d", c.Name, named, found, port)
	}
	scheme := corev1.URISchemeHTTP
	if v := a.value("diag-tls"); v != "" && v != "false" {
		scheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		name, path string
		probe      *corev1.Probe
	}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("container %s: give an httpGet %s on %s", c.Name, p.name, p.path)
			continue
		}
		g := p.probe.HTTPGet
		got, _ := containerPort(c, g.Port)
		if g.Path != p.path || got != port || g.Scheme != scheme && !(g.Scheme == "" && scheme == corev1.URISchemeHTTP) {
			t.Errorf("container %s: %s is %q %s on port %s (%d); want %s %s on the diagnostics port %d", c.Name, p.name, g.Scheme, g.Path, g.Port.String(), got, scheme, p.path, port)
		}
	}
	ann := w.template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(port)) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("the pod template's annotations %v; want prometheus.io/scrape \"true\", prometheus.io/port %q (diag), prometheus.io/path /metrics",
			ann, strconv.Itoa(int(port)))
	}
}

// checkListeners: a listener on every interface has its container port; a
// listener on loopback has none (nothing outside the pod could reach it);
// and every container port is a listener's.
func checkListeners(t *testing.T, c *corev1.Container, a wardenArgs) {
	ports := map[int32]bool{}
	for _, flag := range []string{"listen", "diag-listen", "proxy-listen", "grpc-listen"} {
		addr := a.value(flag)
		if addr == "" {
			continue
		}
		host, port, err := splitAddr(addr)
		if err != nil {
			t.Errorf("container %s: --%s %q: %v", c.Name, flag, addr, err)
			continue
		}
		_, exposed := containerPort(c, intstr.FromInt32(port))
		switch loopback := host == "localhost" || net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback(); {
		case loopback && exposed:
			t.Errorf("container %s: --%s %s is on loopback, yet port %d is a container port", c.Name, flag, addr, port)
		case !loopback && !exposed:
			t.Errorf("container %s: --%s %s has no container port %d", c.Name, flag, addr, port)
		}
		ports[port] = true
	}
	for _, p := range c.Ports {
		if !ports[p.ContainerPort] {
			t.Errorf("container %s: container port %s (%d) is no listener of Warden's", c.Name, p.Name, p.ContainerPort)
		}
	}
}

func splitAddr(addr string) (string, int32, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseInt(p, 10, 32)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: give a fixed port", p)
	}
	return host, int32(port), nil
}

// checkDataDir: a node that writes to its data directory (the embedded
// store; the root init token of an admin node) has it on a writable
// volume, the root file system being read-only; and a node with the
// embedded store runs alone, each pod having a store of its own.
func (m *manifests) checkDataDir(t *testing.T, w workload, c *corev1.Container, a wardenArgs) {
	embedded := a.value("etcd-endpoints") == ""
	if !embedded && a.value("role") == "sidecar" {
		return
	}
	dir := path.Clean(a.value("data-dir"))
	vm, _ := mountOf(c, dir)
	var vol *corev1.Volume
	if vm != nil {
		vol = volumeNamed(&w.template.Spec, vm.Name)
	}
	writable := vm != nil && !vm.ReadOnly && (slices.Contains(w.claimTemplates, vm.Name) ||
		vol != nil && (vol.EmptyDir != nil || vol.PersistentVolumeClaim != nil || vol.Ephemeral != nil))
	if !writable {
		t.Errorf("container %s: the data directory %s is on no writable volume (emptyDir or a claim)", c.Name, dir)
	}
	if embedded && w.replicas != 1 {
		t.Errorf("container %s: %d replicas with the embedded store: each pod would have a store of its own; point them at a cluster (--etcd-endpoints)", c.Name, w.replicas)
	}
}

// checkRoutes: a route table file of a ConfigMap defined here parses, as
// `warden routes test --file` reads it.
func (m *manifests) checkRoutes(t *testing.T, w workload, c *corev1.Container, a wardenArgs, bin string) {
	file := a.value("routes")
	if file == "" {
		return
	}
	vm, rel := mountOf(c, path.Clean(file))
	var vol *corev1.Volume
	if vm != nil {
		vol = volumeNamed(&w.template.Spec, vm.Name)
	}
	if vol == nil || vol.ConfigMap == nil {
		t.Errorf("container %s: --routes %s is in no ConfigMap's volume", c.Name, file)
		return
	}
	cm := m.configMaps[vol.ConfigMap.Name]
	if cm == nil {
		return // made by the user: checkPaths checked its key
	}
	key := rel
	for _, it := range vol.ConfigMap.Items {
		if it.Path == rel {
			key = it.Key
		}
	}
	table, ok := cm.Data[key]
	if !ok {
		return // reported by checkPaths
	}
	tmp := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(tmp, []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "routes", "test", "--file", tmp, "GET", "/")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	// 0: allowed, 3: denied; both mean the table parsed.
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		t.Errorf("ConfigMap %s, key %s: warden routes test --file: %v\n%s", cm.Name, key, err, out.String())
	}
}

package kubernetes

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkPod checks what every pod of these manifests must have, Warden's or
// not: a locked-down security context, resources, volumes and the
// ConfigMaps and Secrets behind them, files where the commands expect
// them, probes and scrape annotations on ports that exist.
func (m *manifests) checkPod(t *testing.T, w workload) {
	spec := &w.template.Spec
	if !selects(w.selector, w.template.Labels) {
		t.Errorf("the selector %v does not select the pod template's labels %v", w.selector, w.template.Labels)
	}
	if w.serviceName != "" {
		if s := m.services[w.serviceName]; s == nil || s.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("serviceName %q names no headless Service of this directory", w.serviceName)
		}
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("the pod's securityContext must set runAsNonRoot: true")
	}
	m.checkVolumes(t, w)
	all := slices.Concat(spec.InitContainers, spec.Containers)
	for i := range all {
		c := &all[i]
		init := i < len(spec.InitContainers)
		checkContainerSecurity(t, c)
		m.checkEnv(t, c)
		m.checkPaths(t, w, c, init)
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}, {"startupProbe", c.StartupProbe}} {
			if p.probe == nil {
				continue
			}
			var port intstr.IntOrString
			switch h := p.probe.ProbeHandler; {
			case h.HTTPGet != nil:
				port = h.HTTPGet.Port
			case h.TCPSocket != nil:
				port = h.TCPSocket.Port
			default:
				continue
			}
			if _, ok := containerPort(c, port); !ok {
				t.Errorf("container %s: the %s's port %s is not a port of the container", c.Name, p.name, port.String())
			}
		}
	}
	checkScrapeAnnotations(t, w.template)
}

// checkContainerSecurity: non-root (the pod says so), a read-only root
// file system, no privilege escalation, every capability dropped, and
// requests and limits of CPU and memory.
func checkContainerSecurity(t *testing.T, c *corev1.Container) {
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("container %s has no securityContext", c.Name)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: securityContext.readOnlyRootFilesystem must be true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: securityContext.allowPrivilegeEscalation must be false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: securityContext.capabilities must drop ALL and add none", c.Name)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("container %s runs as root", c.Name)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("container %s: give a request and a limit of %s", c.Name, r)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("container %s: the %s request %s is over its limit %s", c.Name, r, req.String(), lim.String())
		}
	}
}

// checkVolumes: names unique, each one mounted, each mount naming one,
// and the ConfigMaps and Secrets behind them defined here or made by the
// user as the README says. A Secret's files must not be readable by
// others.
func (m *manifests) checkVolumes(t *testing.T, w workload) {
	spec := &w.template.Spec
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			t.Errorf("volume %q is defined twice", v.Name)
		}
		volumes[v.Name] = true
		switch {
		case v.ConfigMap != nil:
			m.requireRef(t, "volume "+v.Name, "configmap", v.ConfigMap.Name, v.ConfigMap.Optional, itemKeys(v.ConfigMap.Items))
		case v.Secret != nil:
			m.requireRef(t, "volume "+v.Name, "secret", v.Secret.SecretName, v.Secret.Optional, itemKeys(v.Secret.Items))
			if mode := v.Secret.DefaultMode; mode != nil && *mode&0o007 != 0 {
				t.Errorf("volume %s: defaultMode %#o lets every user read the Secret's files", v.Name, *mode)
			}
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					m.requireRef(t, "volume "+v.Name, "configmap", s.ConfigMap.Name, s.ConfigMap.Optional, itemKeys(s.ConfigMap.Items))
				}
				if s.Secret != nil {
					m.requireRef(t, "volume "+v.Name, "secret", s.Secret.Name, s.Secret.Optional, itemKeys(s.Secret.Items))
				}
			}
		}
	}
	used := map[string]bool{}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, vm := range c.VolumeMounts {
			used[vm.Name] = true
			if !volumes[vm.Name] && !slices.Contains(w.claimTemplates, vm.Name) {
				t.Errorf("container %s mounts %q, which is no volume of the pod", c.Name, vm.Name)
			}
		}
	}
	for name := range volumes {
		if !used[name] {
			t.Errorf("volume %q is mounted by no container", name)
		}
	}
}

func itemKeys(items []corev1.KeyToPath) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

// requireRef: the ConfigMap or Secret named is defined in this directory
// or made by the user as the README says, with the keys named.
func (m *manifests) requireRef(t *testing.T, where, kind, name string, optional *bool, keys []string) {
	t.Helper()
	have, known := m.keys(kind, name)
	if !known {
		if optional == nil || !*optional {
			t.Errorf("%s: %s %q is neither defined in %s/ nor made by a `kubectl create` command of README.md", where, kind, name, m.dir)
		}
		return
	}
	for _, k := range keys {
		if !have[k] {
			t.Errorf("%s: %s %q has no key %q (it has %v)", where, kind, name, k, sortedKeys(have))
		}
	}
}

// keys are the keys of a ConfigMap or Secret defined here or made by the
// user; known is false when it is neither.
func (m *manifests) keys(kind, name string) (keys map[string]bool, known bool) {
	keys = map[string]bool{}
	switch kind {
	case "configmap":
		if cm := m.configMaps[name]; cm != nil {
			for k := range cm.Data {
				keys[k] = true
			}
			for k := range cm.BinaryData {
				keys[k] = true
			}
			return keys, true
		}
	case "secret":
		if s := m.secrets[name]; s != nil {
			for k := range s.Data {
				keys[k] = true
			}
			for k := range s.StringData {
				keys[k] = true
			}
			return keys, true
		}
	}
	keys, known = m.userMade[kind+"/"+name]
	return keys, known
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkEnv: the ConfigMaps and Secrets of the environment exist with their
// keys, and every $(VAR) the kubelet expands in the command, the
// arguments and the values names a variable defined before.
func (m *manifests) checkEnv(t *testing.T, c *corev1.Container) {
	defined := map[string]bool{}
	for _, e := range c.Env {
		for _, ref := range varRef.FindAllStringSubmatch(e.Value, -1) {
			if !defined[ref[1]] {
				t.Errorf("container %s: %s refers to $(%s), which no variable before it defines", c.Name, e.Name, ref[1])
			}
		}
		defined[e.Name] = true
		if vf := e.ValueFrom; vf != nil {
			if r := vf.ConfigMapKeyRef; r != nil {
				m.requireRef(t, "container "+c.Name+" "+e.Name, "configmap", r.Name, r.Optional, []string{r.Key})
			}
			if r := vf.SecretKeyRef; r != nil {
				m.requireRef(t, "container "+c.Name+" "+e.Name, "secret", r.Name, r.Optional, []string{r.Key})
			}
		}
	}
	for _, ef := range c.EnvFrom {
		if r := ef.ConfigMapRef; r != nil {
			m.requireRef(t, "container "+c.Name+" envFrom", "configmap", r.Name, r.Optional, nil)
		}
		if r := ef.SecretRef; r != nil {
			m.requireRef(t, "container "+c.Name+" envFrom", "secret", r.Name, r.Optional, nil)
		}
	}
	for _, s := range slices.Concat(c.Command, c.Args) {
		for _, ref := range varRef.FindAllStringSubmatch(s, -1) {
			if !defined[ref[1]] {
				t.Errorf("container %s: %q refers to $(%s), which the container's env does not define", c.Name, s, ref[1])
			}
		}
	}
}

// pathArg finds the absolute paths in a command or argument: after its
// start, a space, a quote or an = (so not the path of a URL).
var pathArg = regexp.MustCompile(`(?:^|[\s="'])(/[A-Za-z0-9._/-]*[A-Za-z0-9_-])`)

// checkPaths: each path the command or arguments name inside a volume
// exists there: a key of the ConfigMap or Secret mounted, or a file that
// an init container writes into the emptyDir.
func (m *manifests) checkPaths(t *testing.T, w workload, c *corev1.Container, init bool) {
	spec := &w.template.Spec
	for _, s := range slices.Concat(c.Command, c.Args) {
		for _, mm := range pathArg.FindAllStringSubmatch(s, -1) {
			p := path.Clean(mm[1])
			vm, rel := mountOf(c, p)
			if vm == nil || rel == "" || vm.SubPath != "" {
				continue
			}
			vol := volumeNamed(spec, vm.Name)
			where := fmt.Sprintf("container %s: %s", c.Name, p)
			switch {
			case vol == nil:
			case vol.ConfigMap != nil:
				m.requireFile(t, where, "configmap", vol.ConfigMap.Name, vol.ConfigMap.Items, rel)
			case vol.Secret != nil:
				m.requireFile(t, where, "secret", vol.Secret.SecretName, vol.Secret.Items, rel)
			case vol.EmptyDir != nil && !init:
				if !writtenByInit(spec, vm.Name, rel) {
					t.Errorf("%s is in the emptyDir %q, which no init container writes it into", where, vm.Name)
				}
			}
		}
	}
}

// requireFile: rel is a file of the ConfigMap's or Secret's volume.
func (m *manifests) requireFile(t *testing.T, where, kind, name string, items []corev1.KeyToPath, rel string) {
	t.Helper()
	if len(items) > 0 {
		for _, it := range items {
			if it.Path == rel {
				return
			}
		}
		t.Errorf("%s: the volume of %s %q maps no item to %q", where, kind, name, rel)
		return
	}
	if have, known := m.keys(kind, name); known && !have[rel] {
		t.Errorf("%s: %s %q has no key %q (it has %v)", where, kind, name, rel, sortedKeys(have))
	}
}

// mountOf is the mount of c that holds p, the deepest one, and p relative
// to it.
func mountOf(c *corev1.Container, p string) (*corev1.VolumeMount, string) {
	var best *corev1.VolumeMount
	rel := ""
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		mp := path.Clean(vm.MountPath)
		r, ok := strings.CutPrefix(p, mp+"/")
		if p == mp {
			r, ok = "", true
		}
		if ok && (best == nil || len(mp) > len(path.Clean(best.MountPath))) {
			best, rel = vm, r
		}
	}
	return best, rel
}

func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// writtenByInit says whether an init container that mounts the volume
// names the file in its command or arguments.
func writtenByInit(spec *corev1.PodSpec, volume, rel string) bool {
	for _, ic := range spec.InitContainers {
		for _, vm := range ic.VolumeMounts {
			if vm.Name != volume || vm.ReadOnly {
				continue
			}
			want := path.Join(vm.MountPath, rel)
			if strings.Contains(strings.Join(slices.Concat(ic.Command, ic.Args), "\n"), want) {
				return true
			}
		}
	}
	return false
}

// containerPort resolves a port, by name or number, among c's ports.
func containerPort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// checkScrapeAnnotations: a pod that asks Prometheus to scrape it names a
// port of one of its containers, and a path.
func checkScrapeAnnotations(t *testing.T, tmpl *corev1.PodTemplateSpec) {
	a := tmpl.Annotations
	if a["prometheus.io/scrape"] != "true" {
		for k := range a {
			if strings.HasPrefix(k, "prometheus.io/") {
				t.Errorf("annotation %s without prometheus.io/scrape: \"true\"", k)
			}
		}
		return
	}
	port, err := strconv.Atoi(a["prometheus.io/port"])
	if err != nil {
		t.Errorf("prometheus.io/port %q is not a port number", a["prometheus.io/port"])
		return
	}
	found := false
	for _, c := range tmpl.Spec.Containers {
		_, ok := containerPort(&c, intstr.FromInt32(int32(port)))
		found = found || ok
	}
	if !found {
		t.Errorf("prometheus.io/port %d is not a port of the pod's containers", port)
	}
	if p := a["prometheus.io/path"]; !strings.HasPrefix(p, "/") {
		t.Errorf("prometheus.io/path %q is not a path", p)
	}
}

// checkServices: each Service selects pods of this directory, and its
// target ports are ports of theirs.
func (m *manifests) checkServices(t *testing.T) {
	for _, s := range m.services {
		var matched []workload
		for _, w := range m.workloads {
			if selects(s.Spec.Selector, w.template.Labels) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("Service %s: its selector %v selects no pod of this directory", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, w := range matched {
				found := false
				for _, c := range w.template.Spec.Containers {
					_, ok := containerPort(&c, target)
					found = found || ok
				}
				if !found {
					t.Errorf("Service %s, port %s: targetPort %s is not a port of %v", s.Name, p.Name, target.String(), w.object)
				}
			}
		}
	}
}

// checkPDBs: each budget covers pods of this directory and still lets one
// of them go: a minAvailable of every replica would block every drain.
func (m *manifests) checkPDBs(t *testing.T) {
	for _, pdb := range m.pdbs {
		if pdb.Spec.Selector == nil {
			t.Errorf("PodDisruptionBudget %s has no selector", pdb.Name)
			continue
		}
		var replicas int32
		for _, w := range m.workloads {
			if selects(pdb.Spec.Selector.MatchLabels, w.template.Labels) {
				replicas += w.replicas
			}
		}
		if replicas == 0 {
			t.Errorf("PodDisruptionBudget %s selects no pod of this directory", pdb.Name)
			continue
		}
		if minAv := pdb.Spec.MinAvailable; minAv != nil && minAv.Type == intstr.Int && (minAv.IntVal < 1 || minAv.IntVal >= replicas) {
			t.Errorf("PodDisruptionBudget %s: minAvailable %d of %d replicas", pdb.Name, minAv.IntVal, replicas)
		}
	}
}

package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// dirs are the directories of manifests, each applied on its own.
var dirs = []string{"sidecar", "fleet"}

// kinds are the objects the manifests may hold, by apiVersion and kind,
// each decoded into its type; any other is refused.
var kinds = map[string]func() any{
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"v1/Pod":                             func() any { return &corev1.Pod{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"apps/v1/DaemonSet":                  func() any { return &appsv1.DaemonSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomization{} },
}

// kustomization is the part of kustomize's file these directories use:
// strict decoding refuses any other field, which the test would not check.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// object is one document of a manifest.
type object struct {
	file, kind, name string
	obj              any
}

func (o object) String() string { return fmt.Sprintf("%s: %s %q", o.file, o.kind, o.name) }

// workload is an object that runs pods.
type workload struct {
	object
	replicas    int32
	selector    map[string]string
	template    *corev1.PodTemplateSpec
	serviceName string // a StatefulSet's governing Service
	// claimTemplates are the names of a StatefulSet's volume claim
	// templates, which its containers mount as volumes.
	claimTemplates []string
}

// manifests are the objects of one directory, and what its README
// documents as created by the user.
type manifests struct {
	dir        string
	objects    []object
	workloads  []workload
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string]*corev1.Service
	pdbs       []*policyv1.PodDisruptionBudget
	kustomize  *kustomization
	userMade   userMade
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// load decodes every YAML file of dir strictly, each document into the
// type of its apiVersion and kind.
func load(t *testing.T, dir string, made userMade) *manifests {
	t.Helper()
	m := &manifests{dir: dir, userMade: made, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	if yml, _ := filepath.Glob(filepath.Join(dir, "*.yml")); len(yml) > 0 {
		t.Errorf("%v: name manifests *.yaml, so that this test reads them", yml)
	}
	seen := map[string]string{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			o, ok := decode(t, filepath.Base(file), i, []byte(doc))
			if !ok {
				continue
			}
			key := o.kind + "/" + o.name
			if prev, dup := seen[key]; dup {
				t.Errorf("%s: %s %q is also defined in %s", o.file, o.kind, o.name, prev)
			}
			seen[key] = o.file
			m.add(t, o)
		}
	}
	return m
}

// decode decodes one document; ok is false for an empty one (or on an
// error, reported).
func decode(t *testing.T, file string, i int, doc []byte) (object, bool) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Errorf("%s, document %d: %v", file, i+1, err)
		return object{}, false
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return object{}, false
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Errorf("%s, document %d: %v", file, i+1, err)
		return object{}, false
	}
	kind := meta.APIVersion + "/" + meta.Kind
	newObj, known := kinds[kind]
	if !known {
		t.Errorf("%s, document %d: unknown kind %q (apiVersion %q): this test checks only %v", file, i+1, meta.Kind, meta.APIVersion, knownKinds())
		return object{}, false
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Errorf("%s, document %d (%s %q): %v", file, i+1, meta.Kind, meta.Metadata.Name, err)
		return object{}, false
	}
	if meta.Metadata.Name == "" && meta.Kind != "Kustomization" {
		t.Errorf("%s, document %d: a %s without a name", file, i+1, meta.Kind)
	}
	return object{file: file, kind: meta.Kind, name: meta.Metadata.Name, obj: obj}, true
}

func knownKinds() []string {
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// add files o by what it is.
func (m *manifests) add(t *testing.T, o object) {
	t.Helper()
	m.objects = append(m.objects, o)
	switch v := o.obj.(type) {
	case *kustomization:
		if o.file != "kustomization.yaml" {
			t.Errorf("%s: a Kustomization belongs in kustomization.yaml", o.file)
		}
		m.kustomize = v
	case *corev1.ConfigMap:
		m.configMaps[v.Name] = v
	case *corev1.Secret:
		m.secrets[v.Name] = v
	case *corev1.Service:
		m.services[v.Name] = v
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, v)
	case *corev1.Pod:
		m.workloads = append(m.workloads, workload{object: o, replicas: 1, selector: v.Labels,
			template: &corev1.PodTemplateSpec{ObjectMeta: v.ObjectMeta, Spec: v.Spec}})
	case *appsv1.Deployment:
		m.workloads = append(m.workloads, workload{object: o, replicas: replicas(v.Spec.Replicas),
			selector: matchLabels(t, o, v.Spec.Selector.MatchLabels, len(v.Spec.Selector.MatchExpressions)), template: &v.Spec.Template})
	case *appsv1.StatefulSet:
		var claims []string
		for _, c := range v.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
		}
		m.workloads = append(m.workloads, workload{object: o, replicas: replicas(v.Spec.Replicas), serviceName: v.Spec.ServiceName,
			selector: matchLabels(t, o, v.Spec.Selector.MatchLabels, len(v.Spec.Selector.MatchExpressions)), template: &v.Spec.Template, claimTemplates: claims})
	case *appsv1.DaemonSet:
		m.workloads = append(m.workloads, workload{object: o, replicas: 1,
			selector: matchLabels(t, o, v.Spec.Selector.MatchLabels, len(v.Spec.Selector.MatchExpressions)), template: &v.Spec.Template})
	}
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// matchLabels is a selector's labels; expressions are not checked, so
// they are refused.
func matchLabels(t *testing.T, o object, labels map[string]string, expressions int) map[string]string {
	t.Helper()
	if expressions > 0 || len(labels) == 0 {
		t.Errorf("%v: give the selector as matchLabels alone", o)
	}
	return labels
}

// selects says whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkKustomization: the directory's kustomization.yaml lists exactly
// its other manifests, so that `kubectl apply -k` applies what this test
// checked.
func (m *manifests) checkKustomization(t *testing.T) {
	if m.kustomize == nil {
		return
	}
	var files []string
	for _, o := range m.objects {
		if o.file != "kustomization.yaml" && !slices.Contains(files, o.file) {
			files = append(files, o.file)
		}
	}
	listed := slices.Clone(m.kustomize.Resources)
	slices.Sort(files)
	slices.Sort(listed)
	if !slices.Equal(files, listed) {
		t.Errorf("kustomization.yaml lists %v; the directory's manifests are %v", listed, files)
	}
}

// userMade is what deploy/kubernetes/README.md tells the user to create:
// "configmap/NAME" or "secret/NAME", with the keys of each.
type userMade map[string]map[string]bool

var kubectlCreate = regexp.MustCompile(`kubectl\s.*?\bcreate\s+(configmap|secret\s+generic)\s+([a-z0-9.-]+)(.*)`)

// readUserMade reads the `kubectl create configmap|secret generic` commands
// of the README (lines joined where they end in a backslash), and the keys
// their --from-file and --from-literal arguments give.
func readUserMade(t *testing.T, readme string) userMade {
	t.Helper()
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	made := userMade{}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		mm := kubectlCreate.FindStringSubmatch(line)
		if mm == nil {
			continue
		}
		kind := "configmap"
		if strings.HasPrefix(mm[1], "secret") {
			kind = "secret"
		}
		keys := map[string]bool{}
		for _, arg := range strings.Fields(mm[3]) {
			switch {
			case strings.HasPrefix(arg, "--from-file="):
				src := strings.TrimPrefix(arg, "--from-file=")
				key, _, found := strings.Cut(src, "=")
				if !found {
					key = filepath.Base(src)
				}
				keys[key] = true
			case strings.HasPrefix(arg, "--from-literal="):
				key, _, _ := strings.Cut(strings.TrimPrefix(arg, "--from-literal="), "=")
				keys[key] = true
			}
		}
		made[kind+"/"+mm[2]] = keys
	}
	return made
}

package kubernetes

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// TestManifests decodes every manifest of each directory strictly into
// its Kubernetes type, then checks that the objects agree with each other
// (selectors, ports, volumes, ConfigMaps and Secrets, budgets) and with
// `warden serve` (flags, listeners, probes, scrape annotations, the route
// table).
func TestManifests(t *testing.T) {
	made := readUserMade(t, "README.md")
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			m := load(t, dir, made)
			m.checkKustomization(t)
			m.checkServices(t)
			m.checkPDBs(t)
			for _, w := range m.workloads {
				t.Run(w.kind+"/"+w.name, func(t *testing.T) {
					m.checkPod(t, w)
					m.checkWardens(t, w)
				})
			}
		})
	}
}

// TestEveryDirectoryChecked: a new directory of manifests is added to
// dirs, not left unchecked.
func TestEveryDirectoryChecked(t *testing.T) {
	files, err := filepath.Glob("*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if d := filepath.Dir(f); !slices.Contains(dirs, d) {
			t.Errorf("%s: the directory %s is not among the ones TestManifests checks (%v)", f, d, dirs)
		}
	}
}

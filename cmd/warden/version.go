package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at build time with
// -ldflags "-X main.version=v0.3.0 -X main.commit=1a2b3c…" (make build and
// make image do). Without -X main.commit, the commit is read from what the
// Go toolchain stamped into the binary (a build in a git checkout); a
// build outside one, like go run or a test binary, knows none.
var (
	version = "dev"
	commit  = ""
)

// buildInfo is what `warden version` reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// currentBuild reads the version, the commit and the Go version of this
// binary.
func currentBuild() buildInfo {
	var settings []debug.BuildSetting
	if bi, ok := debug.ReadBuildInfo(); ok {
		settings = bi.Settings
	}
	return buildOf(version, commit, settings, runtime.Version())
}

// buildOf is what `warden version` reports of a binary stamped with
// version and commit (by -ldflags -X) and settings (by the toolchain): the
// commit set by -X wins, then the one the toolchain stamped, else
// "unknown".
func buildOf(version, commit string, settings []debug.BuildSetting, goVersion string) buildInfo {
	if commit == "" {
		commit = vcsCommit(settings)
	}
	if commit == "" {
		commit = "unknown"
	}
	return buildInfo{Version: version, Commit: commit, Go: goVersion}
}

// vcsCommit is the revision the toolchain stamped, with "-dirty" when the
// checkout had changes it did not commit; "" when it stamped none.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev, dirty string
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// shortCommit abbreviates a full revision for people, keeping "-dirty".
func shortCommit(c string) string {
	const n = 12
	rev, dirty := c, ""
	if r, ok := strings.CutSuffix(c, "-dirty"); ok {
		rev, dirty = r, "-dirty"
	}
	if len(rev) == 40 || len(rev) == 64 { // a SHA-1 or SHA-256 object name
		rev = rev[:n]
	}
	return rev + dirty
}

// cmdVersion prints the version, the commit and the Go version; -o json
// prints them as {"version", "commit", "go"}.
func cmdVersion(e env, args []string) error {
	f := newFlags(e, "version", "version [-o json]", "text", "json")
	if err := f.parse(args, 0, 0); err != nil {
		return err
	}
	b := currentBuild()
	if f.json() {
		return printJSON(e.stdout, b)
	}
	fmt.Fprintf(e.stdout, "warden %s (commit %s, %s)\n", b.Version, shortCommit(b.Commit), b.Go)
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestBuildOf(t *testing.T) {
	t.Parallel()
	const rev = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		commit   string
		settings []debug.BuildSetting
		want     string
		short    string
	}{
		{name: "stamped by the toolchain", settings: vcs("false"), want: rev, short: "1a2b3c4d5e6f"},
		{name: "a checkout with changes", settings: vcs("true"), want: rev + "-dirty", short: "1a2b3c4d5e6f-dirty"},
		{name: "set by -ldflags wins", commit: "0123abcd", settings: vcs("true"), want: "0123abcd", short: "0123abcd"},
		{name: "set by -ldflags, dirty", commit: rev + "-dirty", want: rev + "-dirty", short: "1a2b3c4d5e6f-dirty"},
		{name: "no version control", settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}, want: "unknown", short: "unknown"},
		{name: "no build information", want: "unknown", short: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := buildOf("v0.3.0", tc.commit, tc.settings, "go1.26.8")
			if b != (buildInfo{Version: "v0.3.0", Commit: tc.want, Go: "go1.26.8"}) {
				t.Fatalf("buildOf = %+v; want commit %q", b, tc.want)
			}
			if got := shortCommit(b.Commit); got != tc.short {
				t.Fatalf("shortCommit(%q) = %q; want %q", b.Commit, got, tc.short)
			}
		})
	}
}

// TestVersionCommand: the text line, and -o json, after the command or
// before it, with the keys of old ("version") and the new ones.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	line := regexp.MustCompile(`^warden dev \(commit [0-9a-z-]+, ` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`)
	tests := []struct {
		name string
		args []string
		json bool
	}{
		{name: "text", args: []string{"version"}},
		{name: "json", args: []string{"version", "-o", "json"}, json: true},
		{name: "json before the command", args: []string{"-o", "json", "version"}, json: true},
		{name: "json with =", args: []string{"version", "-o=json"}, json: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if !tc.json {
				if !line.MatchString(out.String()) {
					t.Fatalf("output %q does not match %s", out.String(), line)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if len(got) != 3 || got["version"] != "dev" || got["commit"] == "" || got["go"] != runtime.Version() {
				t.Fatalf("got %v; want version dev, a commit and go %s", got, runtime.Version())
			}
		})
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, &out, &out); code != exitUsage {
		t.Fatalf("version extra: exit %d (%s); want %d", code, out.String(), exitUsage)
	}
}

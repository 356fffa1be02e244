package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// completionScript prints warden's completion script for shell into a
// file, and returns its path.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"completion", shell}, &out, &errOut); code != exitOK {
		t.Fatalf("warden completion %s: exit %d: %s", shell, code, errOut.String())
	}
	if !strings.Contains(out.String(), "identity") || !strings.Contains(out.String(), "profile") {
		t.Fatalf("the %s script names no subcommands:\n%s", shell, out.String())
	}
	path := filepath.Join(t.TempDir(), "warden."+shell)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needShell skips the test when shell is not installed.
func needShell(t *testing.T, shell string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed", shell)
	}
	return path
}

// TestCompletionSyntax: each shell parses its script without running it.
func TestCompletionSyntax(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	for _, tc := range []struct {
		shell string
		check []string // the shell's flags that parse a script without running it
	}{
		{"bash", []string{"-n"}},
		{"zsh", []string{"-n"}},
		{"fish", []string{"--no-execute"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			script := completionScript(t, tc.shell)
			sh := needShell(t, tc.shell)
			if out, err := exec.Command(sh, append(tc.check, script)...).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.shell, strings.Join(tc.check, " "), err, out)
			}
		})
	}
}

// completionCases are command lines, the cursor at the end of the last
// word, and the candidates each shell offers there.
var completionCases = []struct {
	name  string
	words []string
	want  []string
}{
	{name: "command", words: []string{"warden", "us"}, want: []string{"user"}},
	{name: "subcommand", words: []string{"warden", "user", "ide"}, want: []string{"identity"}},
	{name: "after a global flag and its value", words: []string{"warden", "--profile", "ci", "user", "ide"}, want: []string{"identity"}},
	{name: "a subcommand's flag", words: []string{"warden", "user", "identity", "add", "usr-1", "--iss"}, want: []string{"--issuer"}},
	{name: "global flag", words: []string{"warden", "--pro"}, want: []string{"--profile"}},
	{name: "what -o takes", words: []string{"warden", "user", "ls", "-o", ""}, want: []string{"json", "table"}},
	{name: "serve's flags", words: []string{"warden", "serve", "--data"}, want: []string{"--data-dir"}},
	{name: "shells", words: []string{"warden", "completion", ""}, want: []string{"bash", "fish", "zsh"}},
	{name: "a group", words: []string{"warden", "issuer", "key", ""}, want: []string{"add", "ls", "rm"}},
}

// TestBashCompletion sources the bash script and calls its function as
// bash does, with COMP_WORDS and COMP_CWORD.
func TestBashCompletion(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	script := completionScript(t, "bash")
	bash := needShell(t, "bash")
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			line := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _warden; printf '%s\n' "${COMPREPLY[@]}"`
			out, err := exec.Command(bash, append([]string{"-c", line, "bash", script}, tc.words...)...).CombinedOutput()
			checkCandidates(t, tc.words, tc.want, string(out), err)
		})
	}
}

// TestZshCompletion runs the zsh script's function outside the completion
// system: compadd prints what it is given, which zsh would then match
// against the word at the cursor, as the test does.
func TestZshCompletion(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	script := completionScript(t, "zsh")
	zsh := needShell(t, "zsh")
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			line := `compdef() { :; }; compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2}; }; _files() { :; }
source "$1"; shift; words=("$@"); CURRENT=$#; _warden`
			out, err := exec.Command(zsh, append([]string{"-f", "-c", line, "zsh", script}, tc.words...)...).CombinedOutput()
			var matched []string
			for _, c := range strings.Fields(string(out)) {
				if strings.HasPrefix(c, tc.words[len(tc.words)-1]) {
					matched = append(matched, c)
				}
			}
			checkCandidates(t, tc.words, tc.want, strings.Join(matched, "\n"), err)
		})
	}
}

// TestFishCompletion asks fish itself what completes (complete -C).
func TestFishCompletion(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	script := completionScript(t, "fish")
	fish := needShell(t, "fish")
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, strings.Join(tc.words, " ")).CombinedOutput()
			var cands []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				c, _, _ := strings.Cut(l, "\t")
				cands = append(cands, c)
			}
			checkCandidates(t, tc.words, tc.want, strings.Join(cands, "\n"), err)
		})
	}
}

func checkCandidates(t *testing.T, words, want []string, out string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%q: %v\n%s", words, err, out)
	}
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%q completes to %q; want %q", words, got, want)
	}
}

// TestCompletionTree: -o json prints the tree the scripts are made from,
// with each command's flags read from its flag set.
func TestCompletionTree(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	var out bytes.Buffer
	if code := run(context.Background(), []string{"completion", "-o", "json"}, &out, &out); code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var tree struct{ Commands []cmdNode }
	if err := json.Unmarshal(out.Bytes(), &tree); err != nil {
		t.Fatal(err)
	}
	byPath := map[string]cmdNode{}
	for _, n := range tree.Commands {
		byPath[n.Path] = n
	}
	for _, tc := range []struct {
		path  string
		subs  []string
		flags []string
	}{
		{path: "", subs: []string{"completion", "serve", "user", "version"}, flags: []string{"--help", "--profile", "-o"}},
		{path: "user", subs: []string{"access", "identity"}, flags: []string{"--help"}},
		{path: "user identity add", flags: []string{"--issuer", "--subject", "--profile", "-o", "--help"}},
		{path: "profile get", flags: []string{"--include-credentials"}},
		{path: "serve", flags: []string{"--listen", "--data-dir", "--help"}},
		{path: "completion", subs: []string{"bash", "zsh", "fish"}},
	} {
		n, ok := byPath[tc.path]
		if !ok {
			t.Errorf("no command %q", tc.path)
			continue
		}
		for _, s := range tc.subs {
			if !slices.Contains(n.Subcommands, s) {
				t.Errorf("%q: no subcommand %q in %q", tc.path, s, n.Subcommands)
			}
		}
		for _, f := range tc.flags {
			if !slices.Contains(n.Flags, f) {
				t.Errorf("%q: no flag %q in %q", tc.path, f, n.Flags)
			}
		}
	}
	for _, bad := range [][]string{{"completion"}, {"completion", "tcsh"}} {
		out.Reset()
		if code := run(context.Background(), bad, &out, &out); code != exitUsage || !strings.Contains(out.String(), "want bash, zsh or fish") {
			t.Errorf("warden %s: exit %d, %q; want a usage error naming the shells", strings.Join(bad, " "), code, out.String())
		}
	}
}

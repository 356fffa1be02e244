package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelpExamples runs every command and subcommand with --help: each
// exits 0 and its help ends with an Examples section of 1 to 3 lines of
// that very command.
func TestHelpExamples(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	tree := commandTree(env{ctx: context.Background()})
	if len(tree) < 60 {
		t.Fatalf("the command tree has %d paths; want every command and subcommand", len(tree))
	}
	paths := map[string]bool{}
	for _, n := range tree[1:] {
		paths[n.Path] = true
		t.Run(n.Path, func(t *testing.T) {
			var out bytes.Buffer
			args := append(strings.Fields(n.Path), "--help")
			if code := run(context.Background(), args, &out, &out); code != exitOK {
				t.Fatalf("warden %s: exit %d: %s", strings.Join(args, " "), code, out.String())
			}
			_, section, ok := strings.Cut(out.String(), "\nExamples:\n")
			if !ok {
				t.Fatalf("warden %s has no Examples section:\n%s", strings.Join(args, " "), out.String())
			}
			lines := strings.Split(strings.TrimSuffix(section, "\n"), "\n")
			if len(lines) < 1 || len(lines) > 3 {
				t.Fatalf("%d examples; want 1 to 3:\n%s", len(lines), section)
			}
			// Each shows the command (a group's, its subcommands);
			// completion's shells are arguments of one command.
			prefix := "warden " + n.Path
			if strings.HasPrefix(n.Path, "completion ") {
				prefix = "warden completion"
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "  ") || !strings.Contains(l, prefix) {
					t.Errorf("example %q is not an indented use of %q", l, prefix)
				}
			}
		})
	}
	for path := range examples {
		if !paths[path] {
			t.Errorf("examples of %q, which is no command", path)
		}
	}
}

// TestSubcommandTable holds the table the completion scripts read to what
// each group answers to a subcommand it does not know ("want a, b or c").
func TestSubcommandTable(t *testing.T) {
	t.Setenv("WARDEN_CONFIG_DIR", t.TempDir())
	want := regexp.MustCompile(`want (.*)\n`)
	for path, subs := range subcommands {
		t.Run(path, func(t *testing.T) {
			var out bytes.Buffer
			args := append(strings.Fields(path), "no-such-subcommand")
			if code := run(context.Background(), args, &out, &out); code != exitUsage {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			m := want.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("no list of subcommands in %q", out.String())
			}
			var known []string
			for _, w := range strings.FieldsFunc(strings.ReplaceAll(m[1], " or ", ","), func(r rune) bool { return r == ',' || r == ' ' }) {
				known = append(known, w)
			}
			slices.Sort(known)
			if table := slices.Sorted(slices.Values(subs)); !slices.Equal(known, table) {
				t.Fatalf("warden %s knows %v; the table says %v", path, known, table)
			}
		})
	}
}

// TestUsageListsCommands: warden --help names every command.
func TestUsageListsCommands(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &out); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for name := range commands {
		if !regexp.MustCompile(`(?m)^  ` + name + `\b`).MatchString(out.String()) {
			t.Errorf("the usage does not list %q", name)
		}
	}
}

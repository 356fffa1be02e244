package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/wardenauthz/warden/sdk"
)

// Exit codes of the CLI beyond exitOK, exitError and exitUsage.
const (
	exitDenied   = 3 // an authorization failure, or a check that was denied
	exitNotFound = 4
	exitServer   = 5 // the server failed or could not be reached
)

// cliError is an error with the exit code it ends the command with.
type cliError struct {
	code int
	msg  string
}

func (e cliError) Error() string { return e.msg }

// exitCode maps an error to the CLI's exit code.
func exitCode(err error) int {
	var ce cliError
	var ue usageError
	var conn *sdk.ConnectError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &conn):
		return exitServer
	}
	switch s := sdk.StatusOf(err); {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return exitDenied
	case s == http.StatusNotFound:
		return exitNotFound
	case s >= 500:
		return exitServer
	case s >= 400:
		return exitUsage
	}
	return exitError
}

// describe renders an error for a person: Warden's message, not the
// request plumbing.
func describe(err error) string {
	var e *sdk.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return err.Error()
}

// env is what a CLI command works with.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	// seeFlags, when set, is shown each command's flags as its --help
	// prints them: how `warden completion` learns them.
	seeFlags func(*cmdFlags)
}

// cmdFlags are a command's flags, with the three every command takes.
type cmdFlags struct {
	*flag.FlagSet
	output  *string
	formats []string // the values -o takes, the default first
	profile *string
	ca      *string // --ca: the CAs trusted for an https:// deployment, over the profile's
	args    []string
	usage   func() // prints the usage and the flags to stdout
}

func newFlags(e env, name, usage string, formats ...string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print a parse error and the usage itself;
	// run prints the error once, and --help prints the usage.
	fs.SetOutput(io.Discard)
	if len(formats) == 0 {
		formats = []string{"table", "json"}
	}
	f := &cmdFlags{FlagSet: fs, formats: formats}
	f.output = fs.String("o", formats[0], "output `format`: "+strings.Join(formats, ", "))
	f.profile = fs.String("profile", "", "the profile to use (default: the default profile; $WARDEN_PROFILE)")
	f.ca = fs.String("ca", "", "`file` of PEM CA certificates trusted for an https:// deployment (default: the profile's, else the system's; $WARDEN_CA)")
	f.usage = func() {
		fmt.Fprintf(e.stdout, "Usage: warden %s\n\nFlags:\n", usage)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(e.stdout, examplesOf(name))
		if e.seeFlags != nil {
			e.seeFlags(f)
		}
	}
	return f
}

// parse parses flags and positional arguments in any order, as fuse does,
// and checks the number of positional arguments.
func (f *cmdFlags) parse(args []string, minArgs, maxArgs int) error {
	for {
		if err := f.Parse(args); err != nil {
			if err == flag.ErrHelp {
				f.usage()
				return err
			}
			return usageError{fmt.Errorf("%w (see 'warden %s --help')", err, f.Name())}
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		f.args = append(f.args, args[0])
		args = args[1:]
	}
	if *f.profile == "" {
		*f.profile = os.Getenv("WARDEN_PROFILE")
	}
	if *f.ca == "" {
		*f.ca = os.Getenv("WARDEN_CA")
	}
	for i, a := range f.args {
		if a == "" {
			return usageError{fmt.Errorf("argument %d is empty", i+1)}
		}
	}
	switch {
	case len(f.args) < minArgs:
		return usageError{fmt.Errorf("%d argument(s) missing; see --help", minArgs-len(f.args))}
	case maxArgs >= 0 && len(f.args) > maxArgs:
		return usageError{fmt.Errorf("unexpected argument %q", f.args[maxArgs])}
	}
	if slices.Contains(f.formats, *f.output) {
		return nil
	}
	return usageError{fmt.Errorf("-o %q must be one of %s", *f.output, strings.Join(f.formats, ", "))}
}

// json says whether to print JSON.
func (f *cmdFlags) json() bool { return *f.output == "json" }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// listAll reads every page of a list, fetch reading the page after the
// cursor next ("" for the first).
func listAll[T any](fetch func(next string) (sdk.Page[T], error)) ([]T, error) {
	var out []T
	next := ""
	for {
		p, err := fetch(next)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		if p.Next == next {
			return nil, fmt.Errorf("the server repeated the list cursor %q; stopping", next)
		}
		next = p.Next
	}
}

// table prints rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// fields prints label: value lines, leaving out empty values.
func fields(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
		}
	}
	tw.Flush()
}

// denied restates a 403 of the admin API with what the command needed: the
// API says only "Unauthorized", but the CLI knows the action and resource
// of its request.
func denied(err error, who, action, resource string) error {
	if sdk.StatusOf(err) != http.StatusForbidden {
		return err
	}
	return cliError{exitDenied, fmt.Sprintf("Unauthorized: %s may not perform '%s' on '%s' (or its token was refused)", who, action, resource)}
}

// groupHelp prints the usage of a command group when its first argument
// asks for help, or is missing (then as a usage error).
func groupHelp(e env, args []string, text string) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(e.stderr, text)
		return usageError{errors.New("a subcommand is required")}
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(e.stdout, text)
		return flag.ErrHelp
	}
	return nil
}

// subcommand reads the subcommand of a group (`warden issuer add …`):
// --help prints help, an unknown one is refused naming the known ones, and
// a known one gets its flags, named group+" "+sub, with its usage line.
// It returns the subcommand and the arguments after it.
func subcommand(e env, args []string, help, group string, usages map[string]string) (string, []string, *cmdFlags, error) {
	if err := groupHelp(e, args, help+examplesOf(group)); err != nil {
		return "", nil, nil, err
	}
	sub := args[0]
	usage, ok := usages[sub]
	if !ok {
		names := slices.Sorted(maps.Keys(usages))
		return "", nil, nil, usageError{fmt.Errorf("unknown subcommand %q: want %s or %s", sub, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])}
	}
	return sub, args[1:], newFlags(e, group+" "+sub, usage), nil
}

// changed reports whether a flag was given.
func (f *cmdFlags) changed(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// Command warden is Warden's single binary: `warden serve` runs the
// authorization sidecar; the other commands manage a deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `Usage: warden <command> [arguments] [flags]

Serving:
  serve                                 run the admin and check APIs, metrics and health endpoints
  health [--live] [--addr HOST:PORT]    probe a server's /readyz (or /healthz); exit 0 when ready

Profiles:
  init TOKEN [--profile NAME]           enroll a new key with an init token and save it as a profile
                                          (an oauth init token: --access-token T adds its identity)
  profile ls|get|set|rm [NAME]          list, show, choose the default, remove profiles
  token [-o raw|json]                   print a fresh access token of the profile

Managing an account:
  issuer add|get|ls|update|rm ISSUER    trusted token issuers
  user add [FIRST [LAST [EMAIL]]]       users; also get|update|rm|ls, init USER,
  user identity add|ls|rm USER            identity (--issuer, --subject),
  user access add|ls|rm USER [ACTION]     access (--action, --resource)
  client add [DISPLAYNAME]              clients, with the same subcommands as user
  hook put NAME MODULE.wasm             policy hooks (--mode, --action-prefix); also get|rm NAME, ls
  routes put NAME FILE                  route tables of the front doors; also get|rm NAME, ls
  audit ls                              the admin API calls made, newest first (--from, --action, …)

Deciding:
  check ACTION RESOURCE                 may the profile do ACTION on RESOURCE? (exit 3 when denied)
  routes test [NAME|--file F] METHOD URL  which route a request matches, and its decision (--token)

Other:
  version                               print the version, the commit and the Go version
  completion bash|zsh|fish              print a shell completion script (source <(warden completion bash))

Every command but serve takes --help, -o json, --profile NAME and --ca FILE
(the CA certificates trusted for an https:// deployment; also $WARDEN_CA).
Exit codes: 0 done, 1 error, 2 usage, 3 unauthorized or denied, 4 not found, 5 server error or unreachable.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the CLI's commands but serve.
var commands = map[string]func(env, []string) error{
	"init":    cmdInit,
	"profile": cmdProfile,
	"token":   cmdToken,
	"issuer":  cmdIssuer,
	"user":    cmdAgents(usersCLI),
	"client":  cmdAgents(clientsCLI),
	"check":   cmdCheck,
	"hook":    cmdHook,
	"routes":  cmdRoutes,
	"audit":   cmdAudit,
	"health":  cmdHealth,
	"version": cmdVersion,
	// completion joins in completion.go's init: it reads this table.
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args, err := hoistGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "warden: %v\n", err)
		return exitUsage
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd := commands[args[0]]; {
	case args[0] == "serve":
		err = serve(ctx, args[1:], stderr)
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
	case cmd != nil:
		err = cmd(env{ctx: ctx, stdout: stdout, stderr: stderr}, args[1:])
	default:
		fmt.Fprintf(stderr, "warden: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if msg := describe(err); msg != "" {
		fmt.Fprintf(stderr, "warden %s: %s\n", args[0], msg)
	}
	return exitCode(err)
}

// globalFlags are the flags every command but serve takes, which may also
// come before the command, as in `warden --profile ci user ls`; the value
// says whether the flag takes a value.
var globalFlags = map[string]bool{"profile": true, "o": true, "ca": true}

// hoistGlobalFlags moves the global flags found before the command to the
// end of the command line, where the command's own flags are parsed (they
// may come anywhere after it).
func hoistGlobalFlags(args []string) ([]string, error) {
	var hoisted []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		arg := args[0]
		if arg == "-h" || arg == "--help" || arg == "-help" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		takesValue, known := globalFlags[name]
		if !known {
			return nil, fmt.Errorf("unknown flag %q before the command: only --profile, --ca and -o may come before it (run 'warden --help')", arg)
		}
		hoisted = append(hoisted, "-"+name)
		args = args[1:]
		if takesValue {
			if !hasValue {
				if len(args) == 0 {
					return nil, fmt.Errorf("flag %q needs a value", arg)
				}
				value, args = args[0], args[1:]
			}
			hoisted = append(hoisted, value)
		}
	}
	if len(hoisted) == 0 {
		return args, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("a command is required after %s", strings.Join(hoisted, " "))
	}
	if args[0] == "serve" {
		return nil, fmt.Errorf("serve takes no %s; its flags come after it", hoisted[0])
	}
	return append(args, hoisted...), nil
}

// usageError is a mistake in the command line.
type usageError struct{ error }

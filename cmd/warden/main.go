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
  profile ls|get|set|rm [NAME]          list, show, choose the default, remove profiles
  token [-o raw|json]                   print a fresh access token of the profile

Managing an account:
  issuer add|get|ls|update|rm ISSUER    trusted token issuers
  user add [FIRST [LAST [EMAIL]]]       users; also get|update|rm|ls, init USER,
  user identity add|ls|rm USER            identity (--issuer, --subject),
  user access add|ls|rm USER [ACTION]     access (--action, --resource)
  client add [DISPLAYNAME]              clients, with the same subcommands as user
  hook put NAME MODULE.wasm             policy hooks (--mode, --action-prefix); also get|rm NAME

Deciding:
  check ACTION RESOURCE                 may the profile do ACTION on RESOURCE? (exit 3 when denied)
  version                               print the version

Every command but serve takes --help, -o json and --profile NAME.
Exit codes: 0 done, 1 error, 2 usage, 3 unauthorized or denied, 4 not found, 5 server error or unreachable.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

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
	"health":  cmdHealth,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd := commands[args[0]]; {
	case args[0] == "serve":
		err = serve(ctx, args[1:], stderr)
	case args[0] == "version":
		if len(args) > 1 && strings.Join(args[1:], " ") == "-o json" {
			err = printJSON(stdout, map[string]string{"version": version})
		} else {
			fmt.Fprintln(stdout, "warden", version)
		}
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

// usageError is a mistake in the command line.
type usageError struct{ error }

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
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `Usage: warden <command> [flags]

Commands:
  serve     run the admin and check APIs, metrics and health endpoints
  version   print the version

Run 'warden <command> --help' for the flags of a command.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, "warden", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "warden: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "warden %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "warden %s: %v\n", args[0], err)
		return exitError
	}
}

// usageError is a mistake in the command line.
type usageError struct{ error }

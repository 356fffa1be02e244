package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// cmdHealth probes a running server's /readyz (or /healthz with --live):
// what a container health check runs in an image with no shell or curl.
// It reads WARDEN_DIAG_LISTEN and WARDEN_DIAG_TLS as serve does, so the
// same environment points both at one address, over TLS or not.
func cmdHealth(e env, args []string) error {
	f := newFlags(e, "health", "health [--addr [https://]HOST:PORT] [--live] [--timeout DURATION] [--ca FILE]", "text", "json")
	def := os.Getenv("WARDEN_DIAG_LISTEN")
	if def == "" {
		def = "127.0.0.1:7801"
	}
	addr := f.String("addr", def, "`address` of the server's diagnostics listener, HOST:PORT, or https://HOST:PORT when it serves TLS (--diag-tls; https:// is the default when $WARDEN_DIAG_TLS is true) ($WARDEN_DIAG_LISTEN)")
	live := f.Bool("live", false, "ask only whether the process is alive (/healthz), not whether it is ready to serve (/readyz)")
	timeout := f.Duration("timeout", 2*time.Second, "give up after this long")
	serverName := f.String("server-name", "", "over https://, the `name` the server's certificate must carry (default: the host of --addr)")
	if err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("--timeout %s must be positive", *timeout)}
	}
	diagTLS, _ := strconv.ParseBool(os.Getenv("WARDEN_DIAG_TLS"))
	base, err := probeURL(*addr, diagTLS)
	if err != nil {
		return usageError{err}
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	url := base + path
	client := &http.Client{Timeout: *timeout}
	if strings.HasPrefix(base, "https://") {
		// --ca and $WARDEN_CA are read for https:// only, so that a CA
		// set for the API does not fail a plain probe.
		roots, _, err := caFlag(f)
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: *serverName, MinVersion: tls.VersionTLS12}}
	}
	resp, err := client.Get(url)
	if err != nil {
		msg := fmt.Sprintf("%s: %v", url, err)
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			msg += "; the diagnostics listener serves plain HTTP (no --diag-tls): probe http://"
		}
		return cliError{exitServer, msg}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return cliError{exitServer, fmt.Sprintf("%s: reading the answer: %v", url, err)}
	}
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(raw), "HTTPS server") {
		return cliError{exitServer, fmt.Sprintf("%s: the diagnostics listener serves TLS (--diag-tls): probe https://%s, with --ca FILE", url, strings.TrimPrefix(base, "http://"))}
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || (*live && body["status"] == nil) || (!*live && body["ready"] == nil) {
		// Something answered, but not Warden's diagnostics listener:
		// not ready, as far as a health check can tell (exit 1).
		return cliError{exitError, fmt.Sprintf("%s answered %d, but not as Warden's diagnostics listener does (%q); is --addr the address of --diag-listen?",
			url, resp.StatusCode, truncate(string(raw), 200))}
	}
	ok := resp.StatusCode == http.StatusOK
	if f.json() {
		if err := printJSON(e.stdout, map[string]any{"ok": ok, "url": url, "status": resp.StatusCode, "body": body}); err != nil {
			return err
		}
	} else {
		printHealth(e, ok, *live, body)
	}
	if !ok {
		return cliError{exitError, ""}
	}
	return nil
}

func printHealth(e env, ok, live bool, body map[string]any) {
	switch {
	case live && ok:
		fmt.Fprintln(e.stdout, "alive")
	case ok:
		fmt.Fprintf(e.stdout, "ready at revision %v\n", body["revision"])
	case live:
		fmt.Fprintln(e.stdout, "not alive")
	default:
		fmt.Fprintf(e.stdout, "not ready: %v\n", body["reason"])
	}
}

// probeURL turns --addr into the diagnostics listener's URL: a listen
// address (http://, or https:// when https says so) or an http:// or
// https:// URL of one, its host made one to connect to (probeAddr).
func probeURL(addr string, https bool) (string, error) {
	scheme := "http"
	if https {
		scheme = "https"
	}
	hostPort := addr
	if s, rest, ok := strings.Cut(addr, "://"); ok {
		if s != "http" && s != "https" {
			return "", fmt.Errorf("--addr %q: the scheme must be http:// or https://", addr)
		}
		scheme, hostPort = s, strings.TrimSuffix(rest, "/")
	}
	target, err := probeAddr(hostPort)
	if err != nil {
		return "", err
	}
	return scheme + "://" + target, nil
}

// probeAddr turns a listen address into one to connect to: an unspecified
// host (":7801", "0.0.0.0:7801", "[::]:7801") is this machine's loopback.
func probeAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q is not HOST:PORT: %v", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

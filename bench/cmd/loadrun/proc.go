package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// build runs `go build` in dir with extra environment, writing out.
func build(ctx context.Context, dir, out, pkg string, env []string, flags ...string) error {
	start := time.Now()
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	progress("built %s in %s", filepath.Base(out), since(start))
	return nil
}

// server is a server process started by the run.
type server struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// serverCPUs, when set, is the CPU list (as taskset takes it) every server
// runs on: -server-cpus.
var serverCPUs string

// start starts bin with args, its output going to a log file in dir.
func start(name, dir, bin string, args ...string) (*server, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if serverCPUs != "" {
		args = append([]string{"-c", serverCPUs, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return s, nil
}

// stop asks the server to stop (SIGTERM), then kills it after a while.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// tail returns the end of the server's log, for error messages.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitReady polls url until it answers 200.
func (s *server) waitReady(ctx context.Context, url string, limit time.Duration) error {
	start := time.Now()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				progress("%s ready in %s", s.name, since(start))
				return nil
			}
		}
		if time.Since(start) > limit {
			return fmt.Errorf("%s not ready at %s after %s; its log ends:\n%s", s.name, url, since(start), s.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready; its log ends:\n%s", s.name, s.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listening waits until the server logs the JSON line of msg "listening"
// (Warden, and the floor server, bind port 0 and say where they listen)
// and returns it.
func (s *server) listening(ctx context.Context, limit time.Duration) (map[string]any, error) {
	start := time.Now()
	for {
		b, _ := os.ReadFile(s.log)
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "listening" {
				return rec, nil
			}
		}
		if time.Since(start) > limit {
			return nil, fmt.Errorf("%s did not say where it listens after %s; its log ends:\n%s", s.name, since(start), s.tail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before it listened; its log ends:\n%s", s.name, s.tail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago,
// for OPA's server, which cannot say which port it bound.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var runStart = time.Now()

// progress prints a line about the run's progress, with the time since it
// began.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%7s] %s\n", since(runStart), fmt.Sprintf(format, args...))
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// The floor is a minimal net/http server that answers every request with a
// fixed decision of the size Warden's has, without looking at it: what the
// machine, loopback, net/http and the load generator cost by themselves.
// loadrun starts it as a separate process (itself, with floorFlag), as
// Warden and OPA are.
const floorFlag = "-serve-floor"

var floorAnswer = []byte(`{"allow":true,"status":200,"reason":"allowed","agent":{"id":"usr-0123456789abcdef","type":"user"},` +
	`"grant":{"action":"function:*","resource":"/account/acc-00000000000be4c0/subscription/sub-0000000000000003/"},"revision":42}`)

// serveFloor serves the floor on addr until the process is stopped. It
// says where it listens, as Warden does, in a JSON line. With empty, it
// answers 200 without a body, as a forward-auth server allowing does.
func serveFloor(addr string, empty bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"msg": "listening", "listen": ln.Addr().String()})
	fmt.Println(string(line))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if empty {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(floorAnswer)
	})}
	return srv.Serve(ln)
}

// startFloor starts the floor server as a process of its own.
func startFloor(ctx context.Context, dir string) (*server, string, error) {
	return startFloorServer(ctx, dir, false)
}

// startFloorServer starts the floor server, answering without a body when
// empty.
func startFloorServer(ctx context.Context, dir string, empty bool) (*server, string, error) {
	args := []string{floorFlag, "127.0.0.1:0"}
	if empty {
		args = append(args, "empty")
	}
	srv, addr, err := startListening(ctx, "floor", dir, args...)
	if err != nil {
		return nil, "", err
	}
	if err := srv.waitReady(ctx, "http://"+addr+"/ready", 30*time.Second); err != nil {
		srv.stop()
		return nil, "", fmt.Errorf("the floor server: %w", err)
	}
	return srv, addr, nil
}

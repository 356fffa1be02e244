package main

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestGRPCDoorLifecycle: before the node is assembled the gRPC door
// answers UNAVAILABLE saying what it waits for, and its health is
// NOT_SERVING; its health follows what it is told; and stopping it ends
// within the drain's deadline, even with a health watch open.
func TestGRPCDoorLifecycle(t *testing.T) {
	g, err := newGRPCDoor("127.0.0.1:0", func() string { return "opening the store" })
	if err != nil {
		t.Fatal(err)
	}
	go g.srv.Serve(g.ln)
	defer g.srv.Stop()
	conn, err := grpc.NewClient(g.ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err = authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "Warden is starting: opening the store") {
		t.Fatalf("a check before the node is assembled: %v", err)
	}
	health := healthpb.NewHealthClient(conn)
	serving := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatus()
	}
	if st := serving(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before the node is assembled: %v", st)
	}
	g.setServing(true)
	if st := serving(); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health once ready: %v", st)
	}

	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	drain, cancelDrain := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelDrain()
	done := make(chan struct{})
	go func() { g.stop(drain); close(done) }()
	if r, err := watch.Recv(); err == nil && r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("the watch saw %v when the drain began", r.GetStatus())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stopping did not end with the drain's deadline")
	}
}

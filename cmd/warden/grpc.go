package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/wardenauthz/warden/internal/node"
	"github.com/wardenauthz/warden/sidecar/doors/extauthz"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// grpcDoor is the listener of --grpc-listen: Envoy's ext_authz door and
// gRPC's health service. It is bound with the other listeners and answers
// UNAVAILABLE, saying what the node waits for, until the node is
// assembled; its health then follows the node's readiness, and turns
// NOT_SERVING when the process drains.
type grpcDoor struct {
	authv3.UnimplementedAuthorizationServer
	ln       net.Listener
	srv      *grpc.Server
	health   *health.Server
	auth     atomic.Pointer[extauthz.Server]
	starting func() string
}

// grpcMaxStreams bounds the checks one Envoy connection has in flight.
const grpcMaxStreams = 1024

func newGRPCDoor(addr string, starting func() string) (*grpcDoor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	g := &grpcDoor{ln: ln, health: health.NewServer(), starting: starting}
	g.srv = grpc.NewServer(
		grpc.MaxConcurrentStreams(grpcMaxStreams),
		grpc.MaxRecvMsgSize(1<<20),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
	)
	authv3.RegisterAuthorizationServer(g.srv, g)
	healthpb.RegisterHealthServer(g.srv, g.health)
	g.setServing(false)
	return g, nil
}

// Check decides through the node's door once it is assembled.
func (g *grpcDoor) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	a := g.auth.Load()
	if a == nil {
		return nil, status.Error(codes.Unavailable, "Warden is starting: "+g.starting())
	}
	return a.Check(ctx, req)
}

// setServing sets the health of the server and of the ext_authz service.
func (g *grpcDoor) setServing(serving bool) { extauthz.SetHealth(g.health, serving) }

// follow keeps the health equal to the node's readiness until ctx ends.
func (g *grpcDoor) follow(ctx context.Context, n *node.Node) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		g.setServing(n.Ready().Ready)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop turns the health NOT_SERVING, lets the checks in flight finish
// until ctx ends, then stops.
func (g *grpcDoor) stop(ctx context.Context) {
	g.health.Shutdown()
	done := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.srv.Stop()
	}
}

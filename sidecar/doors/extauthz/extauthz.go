// Package extauthz is Envoy's ext_authz gRPC door: the
// envoy.service.auth.v3.Authorization service, deciding the original
// request Envoy describes through the front doors' route table, with
// their metrics (as door "envoy-grpc") and decision log, and the answers
// the HTTP doors give: OK with the caller's identity headers, or a denial
// carrying the HTTP status, WWW-Authenticate and error body they write.
// It also serves gRPC's health service, so that Envoy (or a probe) sees a
// node that is draining.
package extauthz

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sidecar/doors"
	"github.com/wardenauthz/warden/sidecar/internal/decisionlog"
	"github.com/wardenauthz/warden/sidecar/routes"
)

// DoorLabel is the door's name in warden_route_decisions_total and in the
// decision log.
const DoorLabel = "envoy-grpc"

// ServiceName is the gRPC service Envoy calls, also the name its health is
// served under.
const ServiceName = "envoy.service.auth.v3.Authorization"

// Options are a server's surroundings. The zero value trusts no proxy and
// logs to slog's default logger.
type Options struct {
	// TrustedProxies are the Envoys whose x-forwarded-for (or
	// x-real-ip) header is believed about the client's address, as the
	// HTTP doors believe the proxy asking them (--trusted-proxies). The
	// address checked is the gRPC peer's: the Envoy asking.
	TrustedProxies httpkit.Proxies
	// Logger receives the server's own notes (check requests refused as
	// malformed); decisions go to the door's decision log.
	Logger *slog.Logger
}

// Server is the ext_authz gRPC door over a Door's table.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	door   *doors.Door
	opts   Options
	health *health.Server
}

// New returns the gRPC door deciding with d's table, metrics and decision
// log. Its health is SERVING until SetServing(false).
func New(d *doors.Door, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{door: d, opts: opts, health: health.NewServer()}
	s.SetServing(true)
	return s
}

// Register adds the Authorization service and gRPC's health service to g.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// SetServing sets the health the server reports, for the whole server
// ("") and for ServiceName: NOT_SERVING when the node is not ready, so
// that Envoy's health checks send it no checks it would answer from a
// stale state or without its table.
func (s *Server) SetServing(serving bool) { SetHealth(s.health, serving) }

// SetHealth sets what a gRPC health server reports of the door: for the
// whole server ("") and for ServiceName. A server that registers its own
// health service (warden serve, serving before the node is assembled)
// reports through it.
func SetHealth(h *health.Server, serving bool) {
	st := healthpb.HealthCheckResponse_SERVING
	if !serving {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(ServiceName, st)
}

// Check implements envoy.service.auth.v3.Authorization: it decides the
// original request of attributes.request.http. A check without one is an
// InvalidArgument error; every decision, and every request the table
// cannot take, is a CheckResponse: OK with the identity headers, or a
// denial with the HTTP status the HTTP doors would answer.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	hr := req.GetAttributes().GetRequest().GetHttp()
	var missing string
	switch {
	case hr == nil:
		missing = "the check request has no HTTP attributes (attributes.request.http): Warden decides HTTP requests only"
	case hr.GetMethod() == "":
		missing = "the check request names no method (attributes.request.http.method)"
	case hr.GetPath() == "":
		missing = "the check request names no path (attributes.request.http.path)"
	}
	if missing != "" {
		s.opts.Logger.Debug("refused a malformed check request", "reason", missing)
		return nil, status.Error(codes.InvalidArgument, missing)
	}
	h := requestHeaders{hr}
	r := routes.Request{
		Method: hr.GetMethod(),
		Host:   hr.GetHost(),
		URI:    hr.GetPath(),
		Token:  h.bearer(),
		Source: s.source(ctx, req, h),
	}
	requestID := h.last("x-request-id")
	if requestID == "" {
		requestID = hr.GetId()
	}
	o, callID, err := s.door.DecideCall(ctx, DoorLabel, r, requestID)
	switch {
	case errors.Is(err, doors.ErrNoTable):
		return denied(httpkit.Errorf(http.StatusServiceUnavailable, "%s", err), nil, ""), nil
	case err != nil:
		return denied(httpkit.Errorf(http.StatusBadRequest, "%s", err), nil, callID), nil
	case !o.Let():
		challenge, refusal := doors.Refusal(o)
		return denied(refusal, challenge, callID), nil
	}
	set := doors.IdentityHeaders(o)
	if callID != "" {
		set.Set(decisionlog.CallIDHeader, callID)
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         options(set),
			HeadersToRemove: h.spoofed(set),
		}},
	}, nil
}

// denied is the CheckResponse of a denial: the gRPC status matching the
// HTTP one, and the HTTP answer the HTTP doors write for err (its status,
// a JSON error body) with the headers in extra.
func denied(err error, extra http.Header, callID string) *authv3.CheckResponse {
	rec := &recorder{header: http.Header{}}
	for k, v := range extra {
		rec.header[k] = v
	}
	if callID != "" {
		rec.header.Set(decisionlog.CallIDHeader, callID)
	}
	httpkit.Render(rec, err)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(rpcCode(rec.status)), Message: strings.ToValidUTF8(err.Error(), "\uFFFD")},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(rec.status)},
			Headers: options(rec.header),
			Body:    strings.ToValidUTF8(rec.body.String(), "\uFFFD"),
		}},
	}
}

// rpcCode is the google.rpc code of a denial with an HTTP status. Envoy
// answers with the HTTP status; the code is for logs and for clients of
// the gRPC API.
func rpcCode(httpStatus int) code.Code {
	switch {
	case httpStatus == http.StatusUnauthorized:
		return code.Code_UNAUTHENTICATED
	case httpStatus == http.StatusBadRequest:
		return code.Code_INVALID_ARGUMENT
	case httpStatus == http.StatusTooManyRequests:
		return code.Code_RESOURCE_EXHAUSTED
	case httpStatus == http.StatusServiceUnavailable:
		return code.Code_UNAVAILABLE
	case httpStatus >= 500:
		return code.Code_INTERNAL
	}
	return code.Code_PERMISSION_DENIED
}

// options turns headers into Envoy's header options, in a stable order,
// each overwriting a header of the same name the client sent: a client
// cannot add to (spoof) an identity header.
func options(h http.Header) []*corev3.HeaderValueOption {
	keys := slices.Sorted(maps.Keys(h))
	opts := make([]*corev3.HeaderValueOption, len(keys))
	for i, k := range keys {
		opts[i] = &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: strings.ToValidUTF8(strings.Join(h[k], ","), "\uFFFD")},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}
	}
	return opts
}

// source is the client's address: the one Envoy's downstream connection
// came from (attributes.source); or, when the Envoy asking is a trusted
// proxy, the address its x-forwarded-for or x-real-ip names, read as
// httpkit.Proxies.Client reads an HTTP door's request.
func (s *Server) source(ctx context.Context, req *authv3.CheckRequest, h requestHeaders) string {
	socket := req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
	if len(s.opts.TrustedProxies) == 0 {
		return socket
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return socket
	}
	r := &http.Request{RemoteAddr: p.Addr.String(), Header: http.Header{}}
	if xff := h.values("x-forwarded-for"); len(xff) > 0 {
		r.Header["X-Forwarded-For"] = xff
	}
	if real := h.values("x-real-ip"); len(real) > 0 {
		r.Header["X-Real-Ip"] = real
	}
	// Client answers the peer itself when it believes no header: the Envoy
	// is not trusted, or its headers name no client. The client is then
	// the one Envoy saw.
	if client := s.opts.TrustedProxies.Client(r); client != httpkit.Source(r) {
		return client
	}
	return socket
}

// requestHeaders reads the original request's headers: Envoy's headers
// map (lower-case names, the values of a repeated header merged with
// ","), or its header_map when Envoy sends raw headers
// (encode_raw_headers), one entry per header line.
type requestHeaders struct {
	hr *authv3.AttributeContext_HttpRequest
}

// values returns the values of the header name (lower-case).
func (h requestHeaders) values(name string) []string {
	if hm := h.hr.GetHeaderMap(); hm != nil {
		var vs []string
		for _, hv := range hm.GetHeaders() {
			if strings.EqualFold(hv.GetKey(), name) {
				if raw := hv.GetRawValue(); raw != nil {
					vs = append(vs, string(raw))
				} else {
					vs = append(vs, hv.GetValue())
				}
			}
		}
		return vs
	}
	if v, ok := h.hr.GetHeaders()[name]; ok {
		return []string{v}
	}
	return nil
}

// last returns the last value of the header name, "" when it is not set.
func (h requestHeaders) last(name string) string {
	vs := h.values(name)
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// bearer returns the request's bearer token, "" when it has none or more
// than one Authorization header, as httpkit.Bearer: a repeated header
// Envoy merged shows as a comma, which no bearer token holds.
func (h requestHeaders) bearer() string {
	vs := h.values("authorization")
	if len(vs) != 1 {
		return ""
	}
	token := httpkit.BearerToken(vs[0])
	if strings.Contains(token, ",") {
		return ""
	}
	return token
}

// spoofed returns the X-Warden-* headers the client sent that set does not
// overwrite, for Envoy to remove: no header of Warden's reaches the app
// unless Warden set it.
func (h requestHeaders) spoofed(set http.Header) []string {
	var remove []string
	add := func(k string) {
		if len(k) >= len("x-warden-") && strings.EqualFold(k[:len("x-warden-")], "x-warden-") {
			if _, ok := set[http.CanonicalHeaderKey(k)]; !ok {
				remove = append(remove, strings.ToLower(k))
			}
		}
	}
	if hm := h.hr.GetHeaderMap(); hm != nil {
		for _, hv := range hm.GetHeaders() {
			add(hv.GetKey())
		}
	} else {
		for k := range h.hr.GetHeaders() {
			add(k)
		}
	}
	slices.Sort(remove)
	return slices.Compact(remove)
}

// recorder is an http.ResponseWriter that keeps an answer, for denied:
// the HTTP doors' rendering of an error, taken whole.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

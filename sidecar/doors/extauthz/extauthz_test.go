package extauthz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sidecar/doors"
	"github.com/wardenauthz/warden/sidecar/internal/decisionlog"
	"github.com/wardenauthz/warden/sidecar/internal/enginetest"
	"github.com/wardenauthz/warden/sidecar/routes"
)

const table = testkit.DoorsTable

// socket is the downstream address the tests' Envoy saw.
const socket = "203.0.113.7"

// own is a function of Alice's subscription, with a query.
const own = "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn/f1?x=1"

// TestCheck: the gRPC door's answers, every case of the decision table, as
// forward auth's: OK with the identity headers over the client's, or a
// denial with the HTTP doors' status, challenge and error body.
func TestCheck(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	client, _ := serve(t, doors.New(eng, func() *routes.Table { return tbl }, doors.Options{}), Options{})
	open := compile(t, "default: allow\n")
	openClient, _ := serve(t, doors.New(eng, func() *routes.Table { return open }, doors.Options{}), Options{})
	emptyClient, _ := serve(t, doors.New(eng, func() *routes.Table { return nil }, doors.Options{}), Options{})

	alice, bob := "Bearer "+w.Tok("rsa1", testkit.AliceSub), "Bearer "+w.Tok("rsa1", "bob")
	other := "/account/" + testkit.OtherAcc + "/subscription/sub-0000000000000001/fn/f1"
	auth := func(token string) map[string]string { return map[string]string{"authorization": token} }
	identity := func(id, typ, sub string) map[string]string {
		return map[string]string{"x-warden-agent-id": id, "x-warden-agent-type": typ, "x-warden-subject": sub}
	}
	for _, tc := range []struct {
		name    string
		client  authv3.AuthorizationClient
		req     *authv3.CheckRequest
		code    code.Code
		status  int               // the denial's HTTP status; 0 when allowed
		headers map[string]string // the answer's headers, all set to overwrite
		remove  []string          // the headers Envoy is told to remove
		message string            // in the error body and the rpc status
	}{
		{name: "allowed", client: client, req: check("GET", "app.example.com", own, auth(alice)),
			code: code.Code_OK, headers: identity(testkit.AliceID, "user", testkit.AliceSub)},
		{name: "a lower-case method", client: client, req: check("get", "app.example.com", own, auth(alice)),
			code: code.Code_OK, headers: identity(testkit.AliceID, "user", testkit.AliceSub)},
		{name: "no token", client: client, req: check("GET", "", own, nil),
			code: code.Code_UNAUTHENTICATED, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="warden"`}, message: "missing bearer token"},
		{name: "a bad token", client: client, req: check("GET", "", own, auth("Bearer x.y.z")),
			code: code.Code_UNAUTHENTICATED, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="warden", error="invalid_token"`}, message: "malformed token"},
		{name: "two tokens Envoy merged", client: client, req: check("GET", "", own, auth(alice+","+bob)),
			code: code.Code_UNAUTHENTICATED, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="warden"`}, message: "missing bearer token"},
		{name: "forbidden", client: client, req: check("GET", "", own, auth(bob)),
			code: code.Code_PERMISSION_DENIED, status: 403, message: "no grant allows"},
		// The other account's issuers do not know Alice's: her token is
		// refused there, as routes.TestDecide says.
		{name: "another tenant's function", client: client, req: check("GET", "", other, auth(alice)),
			code: code.Code_UNAUTHENTICATED, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="warden", error="invalid_token"`}, message: "unknown issuer"},
		{name: "another method", client: client, req: check("POST", "", own, auth(alice)),
			code: code.Code_PERMISSION_DENIED, status: 403, message: "no route matches"},
		{name: "unmatched", client: client, req: check("GET", "", "/elsewhere", auth(alice)),
			code: code.Code_PERMISSION_DENIED, status: 403, message: "no route matches; the table's default denies"},
		{name: "dry-run lets a denial through", client: client, req: check("DELETE", "", "/admin/", auth(bob)),
			code: code.Code_OK, headers: map[string]string{"x-warden-agent-id": testkit.BobID,
				"x-warden-dry-run": "would answer Forbidden: no grant allows 'user:delete' on '/account/" + testkit.Acc + "/user/'"}},
		{name: "a dot segment", client: client, req: check("GET", "", "/account/x/../admin/", auth(alice)),
			code: code.Code_INVALID_ARGUMENT, status: 400, message: `the path has a ".." segment`},
		{name: "an encoded dot segment", client: client, req: check("GET", "", "/a/%2e%2e/admin/", auth(alice)),
			code: code.Code_INVALID_ARGUMENT, status: 400, message: `the path has a ".." segment`},
		{name: "an encoded slash", client: client, req: check("GET", "", "/account/a%2Fb/subscription/s/fn/f", auth(alice)),
			code: code.Code_INVALID_ARGUMENT, status: 400, message: "encoded '/'"},
		{name: "spoofed identity", client: client, req: check("GET", "", own, map[string]string{"authorization": alice,
			"x-warden-agent-id": "usr-00000000000000ff", "x-warden-subject": "root", "x-warden-dry-run": "x", "x-warden-other": "y"}),
			code: code.Code_OK, headers: identity(testkit.AliceID, "user", testkit.AliceSub), remove: []string{"x-warden-dry-run", "x-warden-other"}},
		{name: "spoofed identity, no token on an open route", client: openClient, req: check("GET", "", "/anything", map[string]string{
			"x-warden-agent-id": "usr-00000000000000ff", "x-warden-subject": "root"}),
			code: code.Code_OK, headers: identity("", "", "")},
		{name: "raw headers (encode_raw_headers)", client: client, req: raw(check("GET", "", own, nil), "authorization", alice),
			code: code.Code_OK, headers: identity(testkit.AliceID, "user", testkit.AliceSub)},
		{name: "raw headers, two tokens", client: client, req: raw(check("GET", "", own, nil), "authorization", alice, "authorization", alice),
			code: code.Code_UNAUTHENTICATED, status: 401, message: "missing bearer token"},
		{name: "no table", client: emptyClient, req: check("GET", "", own, auth(alice)),
			code: code.Code_UNAVAILABLE, status: 503, message: doors.ErrNoTable.Error()},
	} {
		resp, err := tc.client.Check(context.Background(), tc.req)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := code.Code(resp.GetStatus().GetCode()); got != tc.code {
			t.Errorf("%s: code %v, want %v (%v)", tc.name, got, tc.code, resp)
			continue
		}
		var opts []*corev3.HeaderValueOption
		if tc.status == 0 {
			ok := resp.GetOkResponse()
			if ok == nil || resp.GetDeniedResponse() != nil {
				t.Errorf("%s: not an OK response: %v", tc.name, resp)
				continue
			}
			opts = ok.GetHeaders()
			if !slices.Equal(ok.GetHeadersToRemove(), tc.remove) {
				t.Errorf("%s: headers to remove %q, want %q", tc.name, ok.GetHeadersToRemove(), tc.remove)
			}
			for _, h := range []string{"x-warden-agent-id", "x-warden-agent-type", "x-warden-subject"} {
				if _, ok := header(opts, h); !ok {
					t.Errorf("%s: %s is not set", tc.name, h)
				}
			}
		} else {
			denied := resp.GetDeniedResponse()
			if denied == nil {
				t.Errorf("%s: not a denial: %v", tc.name, resp)
				continue
			}
			opts = denied.GetHeaders()
			if int(denied.GetStatus().GetCode()) != tc.status {
				t.Errorf("%s: HTTP status %d, want %d", tc.name, denied.GetStatus().GetCode(), tc.status)
			}
			var body httpkit.ErrorBody
			if err := json.Unmarshal([]byte(denied.GetBody()), &body); err != nil || body.Status != tc.status || body.StatusCode != tc.status ||
				!strings.Contains(body.Message, tc.message) {
				t.Errorf("%s: body %q (%v)", tc.name, denied.GetBody(), err)
			}
			if ct, _ := header(opts, "content-type"); ct != "application/json" {
				t.Errorf("%s: content-type %q", tc.name, ct)
			}
			if !strings.Contains(resp.GetStatus().GetMessage(), tc.message) {
				t.Errorf("%s: rpc status message %q", tc.name, resp.GetStatus().GetMessage())
			}
			if _, ok := header(opts, "x-warden-agent-id"); ok {
				t.Errorf("%s: a denial sets the identity headers", tc.name)
			}
			if challenge, ok := header(opts, "www-authenticate"); ok != (tc.status == 401) || ok && challenge == "" {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, challenge)
			}
		}
		for _, o := range opts {
			if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || o.GetAppend() != nil {
				t.Errorf("%s: %s does not overwrite: %v", tc.name, o.GetHeader().GetKey(), o)
			}
		}
		for k, v := range tc.headers {
			if got, ok := header(opts, k); !ok || got != v {
				t.Errorf("%s: %s = %q (set %v), want %q", tc.name, k, got, ok, v)
			}
		}
	}
}

// TestCheckMalformed: a check request without the original request's
// method and path is an InvalidArgument error naming what is missing.
func TestCheckMalformed(t *testing.T) {
	_, eng := enginetest.New(t)
	tbl := compile(t, table)
	client, _ := serve(t, doors.New(eng, func() *routes.Table { return tbl }, doors.Options{}), Options{})
	for _, tc := range []struct {
		name string
		req  *authv3.CheckRequest
		want string
	}{
		{"an empty request", &authv3.CheckRequest{}, "no HTTP attributes (attributes.request.http)"},
		{"no HTTP attributes", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}, "no HTTP attributes"},
		{"no method", check("", "", "/x", nil), "no method (attributes.request.http.method)"},
		{"no path", check("GET", "", "", nil), "no path (attributes.request.http.path)"},
	} {
		_, err := client.Check(context.Background(), tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestCheckLogAndMetrics: the gRPC door's decisions are counted and logged
// as the HTTP doors' are, under door "envoy-grpc", with Envoy's request id
// as the call id, which the answer carries back.
func TestCheckLogAndMetrics(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	var out testkit.Buffer
	d := doors.New(eng, func() *routes.Table { return tbl }, doors.Options{Registerer: w.Reg, DecisionLog: "all", Logger: slog.New(slog.NewJSONHandler(&out, nil))})
	client, _ := serve(t, d, Options{})
	tok := w.Tok("rsa1", testkit.AliceSub)
	resp, err := client.Check(context.Background(), check("get", "", own, map[string]string{"authorization": "Bearer " + tok, "x-request-id": "req-7"}))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("%v %v", resp, err)
	}
	if id, _ := header(resp.GetOkResponse().GetHeaders(), strings.ToLower(decisionlog.CallIDHeader)); id != "req-7" {
		t.Errorf("call id %q", id)
	}
	resp, err = client.Check(context.Background(), check("GET", "", "/nowhere", map[string]string{"authorization": "Bearer " + tok}))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("%v %v", resp, err)
	}
	if id, _ := header(resp.GetDeniedResponse().GetHeaders(), strings.ToLower(decisionlog.CallIDHeader)); id == "" {
		t.Errorf("no call id on a denial")
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records: %s", len(lines), out.String())
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &record); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"msg": "decision", "call_id": "req-7", "door": DoorLabel, "route": "fn", "mode": "enforce",
		"method": "GET", "let": true, "allow": true, "agent_id": testkit.AliceID, "source": socket} {
		if record[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, record[k], v, lines[0])
		}
	}
	for i, part := range strings.Split(tok, ".") {
		if strings.Contains(out.String(), part) {
			t.Fatalf("the log holds part %d of the token", i)
		}
	}
	for labels, want := range map[[4]string]float64{
		{DoorLabel, "fn", "enforce", "allow"}:     1,
		{DoorLabel, "default", "enforce", "deny"}: 1,
	} {
		if got := counter(t, w, labels); got != want {
			t.Errorf("%v: %v, want %v", labels, got, want)
		}
	}
}

// TestCheckSource: the client's address is the one Envoy saw, unless the
// Envoy asking is a trusted proxy: then its x-forwarded-for is believed as
// the HTTP doors believe a trusted proxy's.
func TestCheckSource(t *testing.T) {
	_, eng := enginetest.New(t)
	tbl := compile(t, "default: allow\n")
	loopback := httpkit.Proxies{netip.MustParsePrefix("127.0.0.1/32")}
	elsewhere := httpkit.Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		trusted httpkit.Proxies
		headers map[string]string
		want    string
	}{
		{"no trusted proxies", nil, map[string]string{"x-forwarded-for": "198.51.100.1"}, socket},
		{"an untrusted Envoy", elsewhere, map[string]string{"x-forwarded-for": "198.51.100.1"}, socket},
		{"a trusted Envoy", loopback, map[string]string{"x-forwarded-for": "198.51.100.1, 127.0.0.1"}, "198.51.100.1"},
		{"a trusted Envoy, x-real-ip", loopback, map[string]string{"x-real-ip": "198.51.100.2"}, "198.51.100.2"},
		{"a trusted Envoy, no header", loopback, nil, socket},
		{"a trusted Envoy, a bad header", loopback, map[string]string{"x-forwarded-for": "nonsense"}, socket},
	} {
		var out testkit.Buffer
		d := doors.New(eng, func() *routes.Table { return tbl }, doors.Options{DecisionLog: "all", Logger: slog.New(slog.NewJSONHandler(&out, nil))})
		client, _ := serve(t, d, Options{TrustedProxies: tc.trusted})
		if _, err := client.Check(context.Background(), check("GET", "", "/x", tc.headers)); err != nil {
			t.Fatal(err)
		}
		var record map[string]any
		if err := json.Unmarshal([]byte(out.String()), &record); err != nil {
			t.Fatalf("%s: %v: %s", tc.name, err, out.String())
		}
		if record["source"] != tc.want {
			t.Errorf("%s: source %v, want %s", tc.name, record["source"], tc.want)
		}
	}
}

// TestHealth: the health service answers SERVING for the server and for
// the Authorization service, NOT_SERVING once the node says it is not.
func TestHealth(t *testing.T) {
	_, eng := enginetest.New(t)
	_, conn := serve(t, doors.New(eng, func() *routes.Table { return nil }, doors.Options{}), Options{})
	s, hc := conn.server, healthpb.NewHealthClient(conn.conn)
	expect := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, service := range []string{"", ServiceName} {
			resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
			if err != nil || resp.GetStatus() != want {
				t.Errorf("%q: %v %v, want %v", service, resp.GetStatus(), err, want)
			}
		}
	}
	expect(healthpb.HealthCheckResponse_SERVING)
	s.SetServing(false)
	expect(healthpb.HealthCheckResponse_NOT_SERVING)
	s.SetServing(true)
	expect(healthpb.HealthCheckResponse_SERVING)
	if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "other"}); status.Code(err) != codes.NotFound {
		t.Errorf("an unknown service: %v", err)
	}
}

// FuzzCheck: whatever Envoy (or anything else) sends, the door does not
// panic, and answers a CheckResponse that can be sent or an InvalidArgument
// error.
func FuzzCheck(f *testing.F) {
	w, eng := enginetest.New(f)
	tbl := compile(f, table)
	d := doors.New(eng, func() *routes.Table { return tbl }, doors.Options{DecisionLog: "all", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	s := New(d, Options{TrustedProxies: httpkit.Proxies{netip.MustParsePrefix("0.0.0.0/0")}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	tok := "Bearer " + w.Tok("rsa1", testkit.AliceSub)
	f.Add("GET", "app", own, "authorization", tok, false)
	f.Add("DELETE", "", "/admin/", "x-warden-agent-id", "x", true)
	f.Add("get", "h", "/account/x/../y", "x-forwarded-for", "1.2.3.4, ::1", false)
	f.Add("GET", "", "/a%2fb?%zz", "authorization", "Bearer a,Bearer b", true)
	f.Add("\x00", "\xff", "/%ff/\xfe", "X-WARDEN-\xff", "\xff\r\n", false)
	f.Fuzz(func(t *testing.T, method, host, path, name, value string, rawHeaders bool) {
		req := check(method, host, path, map[string]string{name: value, "authorization": tok})
		if rawHeaders {
			req = raw(check(method, host, path, nil), name, value, "authorization", tok)
		}
		resp, err := s.Check(ctx, req)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%v", err)
			}
			return
		}
		if resp.GetStatus() == nil || (resp.GetOkResponse() == nil) == (resp.GetDeniedResponse() == nil) {
			t.Fatalf("%v", resp)
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("the answer cannot be sent: %v", err)
		}
	})
}

// BenchmarkExtAuthzCached: an allowed check over loopback gRPC, its token
// verified once and cached, as a busy Envoy's checks are.
func BenchmarkExtAuthzCached(b *testing.B) {
	w, eng := enginetest.New(b)
	tbl := compile(b, table)
	client, _ := serve(b, doors.New(eng, func() *routes.Table { return tbl }, doors.Options{Registerer: w.Reg}), Options{})
	req := check("GET", "app.example.com", own, map[string]string{"authorization": "Bearer " + w.Tok("rsa1", testkit.AliceSub),
		"x-request-id": "9f3c2a1e-0b7d-4c55-8e2f-3d1a6b7c8d9e", "user-agent": "bench", "accept": "*/*"})
	benchCheck(b, client, req)
}

// BenchmarkGRPCDoNothing: the same check answered OK at once by a server
// that decides nothing: what gRPC itself costs, to compare
// BenchmarkExtAuthzCached with.
func BenchmarkGRPCDoNothing(b *testing.B) {
	client := dial(b, func(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, nothing{}) })
	req := check("GET", "app.example.com", own, map[string]string{"authorization": "Bearer x.y.z",
		"x-request-id": "9f3c2a1e-0b7d-4c55-8e2f-3d1a6b7c8d9e", "user-agent": "bench", "accept": "*/*"})
	benchCheck(b, authv3.NewAuthorizationClient(client), req)
}

func benchCheck(b *testing.B, client authv3.AuthorizationClient, req *authv3.CheckRequest) {
	ctx := context.Background()
	if resp, err := client.Check(ctx, req); err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("%v %v", resp, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if resp, err := client.Check(ctx, req); err != nil || resp.GetStatus().GetCode() != 0 {
			b.Fatalf("%v %v", resp, err)
		}
	}
}

// nothing is an Authorization server that allows everything at once.
type nothing struct {
	authv3.UnimplementedAuthorizationServer
}

func (nothing) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

// served is a server and a connection to it.
type served struct {
	server *Server
	conn   *grpc.ClientConn
}

// serve runs the gRPC door over d on a loopback listener and returns a
// client of it.
func serve(t testing.TB, d *doors.Door, opts Options) (authv3.AuthorizationClient, served) {
	t.Helper()
	s := New(d, opts)
	conn := dial(t, s.Register)
	return authv3.NewAuthorizationClient(conn), served{server: s, conn: conn}
}

// dial serves what register registers on a loopback listener and returns a
// connection to it; both close when the test ends.
func dial(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// check is the check request Envoy sends for a request, from socket.
func check(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":method": method, ":path": path, ":authority": host}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: socket, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-id", Method: method, Host: host, Path: path, Headers: h, Protocol: "HTTP/1.1", Scheme: "https",
		}},
	}}
}

// raw moves a check request's headers to header_map, as Envoy sends them
// with encode_raw_headers, adding the name-value pairs in kv.
func raw(req *authv3.CheckRequest, kv ...string) *authv3.CheckRequest {
	hr := req.GetAttributes().GetRequest().GetHttp()
	hm := &corev3.HeaderMap{}
	for k, v := range hr.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	hr.Headers, hr.HeaderMap = nil, hm
	return req
}

// header returns the value of the header option named key.
func header(opts []*corev3.HeaderValueOption, key string) (string, bool) {
	for _, o := range opts {
		if o.GetHeader().GetKey() == key {
			return o.GetHeader().GetValue(), true
		}
	}
	return "", false
}

// counter returns warden_route_decisions_total for labels (door, route,
// mode, result).
func counter(t *testing.T, w *testkit.World, labels [4]string) float64 {
	t.Helper()
	families, err := w.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "warden_route_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if got["door"] == labels[0] && got["route"] == labels[1] && got["mode"] == labels[2] && got["result"] == labels[3] {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// compile parses and compiles a route table.
func compile(t testing.TB, text string) *routes.Table {
	t.Helper()
	spec, err := routes.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := routes.Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

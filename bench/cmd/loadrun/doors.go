package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/wardenauthz/warden/bench/internal/load"
)

// The front doors' run (-doors) compares each door of the route table with
// what it stands in for, in one run, on the same generator:
//
//   - forward auth (/v1/authz/forward, as nginx asks it) against the check
//     API, both with a cached token;
//   - Warden's reverse proxy against a bare httputil.ReverseProxy to the
//     same upstream (the floor server), as it comes and with the buffer
//     pool Warden's has, at their max and at half of the bare proxy's;
//   - nginx with auth_request to Warden against nginx with auth_request to
//     a server that does nothing (another floor).
//
// The gRPC door is measured in process (BenchmarkExtAuthzCached against
// BenchmarkGRPCDoNothing in sidecar/doors/extauthz).

// bareProxyFlag starts loadrun as the bare reverse proxy: -serve-bare-proxy
// ADDR UPSTREAM [pool], with "pool" lending its copy buffers from a pool
// as Warden's proxy does.
const bareProxyFlag = "-serve-bare-proxy"

// doorsTable is the route table of the run: the function route asks what
// the check API's requests ask, function:get on the user's resource.
const doorsTable = `default: deny
routes:
  - name: fn
    methods: [GET]
    path: /account/{acc}/subscription/{sub}/fn/{fn}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{acc}}/subscription/{{sub}}/fn/{{fn}}/
`

// serveBareProxy serves a reverse proxy to upstream on addr, built as
// Warden's is (the same transport and rewrite), deciding nothing; with
// pool, its copy buffers come from a pool, as Warden's do.
func serveBareProxy(addr, upstream string, pool bool) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"msg": "listening", "listen": ln.Addr().String()})
	fmt.Println(string(line))
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
	if pool {
		rp.BufferPool = bufferPool{}
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: rp}
	return srv.Serve(ln)
}

// bufferPool lends 32 KiB buffers, as Warden's proxy does.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// startListening starts a helper process of loadrun itself and waits for
// the address it says it listens on.
func startListening(ctx context.Context, name, dir string, args ...string) (*server, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	srv, err := start(name, dir, self, args...)
	if err != nil {
		return nil, "", err
	}
	rec, err := srv.listening(ctx, 30*time.Second)
	if err != nil {
		srv.stop()
		return nil, "", err
	}
	addr, _ := rec["listen"].(string)
	return srv, addr, nil
}

// nginxConf is the configuration of the run's nginx: one server asking
// Warden, one asking a server that does nothing, both in front of the
// same app, each with keep-alive connections to its upstreams.
var nginxConf = template.Must(template.New("nginx").Parse(`daemon off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/nginx-body;
  proxy_temp_path {{.Dir}}/nginx-proxy;
  fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
  uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
  scgi_temp_path {{.Dir}}/nginx-scgi;
  upstream app { server {{.App}}; keepalive 64; }
  upstream warden { server {{.Warden}}; keepalive 64; }
  upstream nothing { server {{.Nothing}}; keepalive 64; }
{{range .Servers}}
  server {
    listen {{.Listen}};
    location / {
      auth_request /_auth;
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /_auth {
      internal;
      proxy_pass http://{{.Auth}};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
{{end}}}
`))

// startNginx starts nginx with nginxConf, its two servers on free ports:
// the first asks Warden, the second the server that does nothing.
func startNginx(ctx context.Context, dir, app, warden, nothing string) (*server, [2]string, error) {
	var ports [2]string
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, ports, fmt.Errorf("nginx is not installed (Debian's nginx-light): %w", err)
		}
		bin = "/usr/sbin/nginx"
	}
	for i := range ports {
		if ports[i], err = freeAddr(); err != nil {
			return nil, ports, err
		}
	}
	type srv struct{ Listen, Auth string }
	var conf strings.Builder
	if err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "App": app, "Warden": warden, "Nothing": nothing,
		"Servers": []srv{{ports[0], "warden/v1/authz/forward"}, {ports[1], "nothing/v1/authz/forward"}}}); err != nil {
		return nil, ports, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		return nil, ports, err
	}
	s, err := start("nginx", dir, bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "nginx-error.log"))
	if err != nil {
		return nil, ports, err
	}
	// Ready once both ports take connections: the first answers 401
	// without a token, so no status says more.
	for _, p := range ports {
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", p, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Since(start) > 30*time.Second || ctx.Err() != nil {
				s.stop()
				return nil, ports, fmt.Errorf("nginx does not listen on %s; its log ends:\n%s", p, s.tail())
			}
		}
	}
	return s, ports, nil
}

// runDoors is the front doors' run.
func runDoors(ctx context.Context, c config, wardenBin, work string) error {
	app, appAddr, err := startFloor(ctx, work)
	if err != nil {
		return err
	}
	defer app.stop()
	routes := filepath.Join(work, "routes.yaml")
	if err := os.WriteFile(routes, []byte(doorsTable), 0o600); err != nil {
		return err
	}
	w, userKey, err := startPopulated(ctx, wardenBin, work, "--routes", routes, "--upstream", "http://"+appAddr, "--proxy-listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer w.stop()
	if w.proxy == "" {
		return fmt.Errorf("warden did not say where its reverse proxy listens")
	}
	tokens, err := mintTokens(userKey, w.baseURL, users, nil)
	if err != nil {
		return err
	}
	bare, bareAddr, err := startListening(ctx, "bare-proxy", work, bareProxyFlag, "127.0.0.1:0", "http://"+appAddr)
	if err != nil {
		return err
	}
	defer bare.stop()
	pooled, pooledAddr, err := startListening(ctx, "bare-proxy-pooled", work, bareProxyFlag, "127.0.0.1:0", "http://"+appAddr, "pool")
	if err != nil {
		return err
	}
	defer pooled.stop()
	nothingDir := filepath.Join(work, "nothing")
	if err := os.MkdirAll(nothingDir, 0o700); err != nil {
		return err
	}
	nothing, nothingAddr, err := startFloorServer(ctx, nothingDir, true)
	if err != nil {
		return err
	}
	defer nothing.stop()
	ngx, ngxPorts, err := startNginx(ctx, work, appAddr, w.addr, nothingAddr)
	if err != nil {
		return err
	}
	defer ngx.stop()

	// The requests: the same user, token and function at every door.
	get := func(addr string, headers ...string) load.Target {
		reqs := make([][]byte, len(tokens))
		for i, tok := range tokens {
			reqs[i] = load.Get(addr, checkResource(i), tok, headers...)
		}
		return doorTarget(addr, reqs)
	}
	forward := func(addr string) load.Target {
		reqs := make([][]byte, len(tokens))
		for i, tok := range tokens {
			reqs[i] = load.Get(addr, "/v1/authz/forward", tok, "X-Original-Method: GET", "X-Original-URI: "+checkResource(i))
		}
		return doorTarget(addr, reqs)
	}

	r := &runner{cfg: c, ctx: ctx}
	closed := load.Closed{Concurrency: c.concurrency, Warmup: c.warmup, Duration: c.duration}
	r.closed("check API, cached token", "Warden", closed, wardenTarget(w.addr, strs(tokens), false))
	r.closed("forward auth, cached token", "Warden", closed, forward(w.addr))
	bc := r.closed("bare ReverseProxy to the app", "bare proxy", closed, get(bareAddr))
	r.closed("bare ReverseProxy with a buffer pool", "bare proxy", closed, get(pooledAddr))
	r.closed("Warden's reverse proxy, cached token", "Warden", closed, get(w.proxy))
	if bc != nil {
		half := bc.res.Throughput() / 2
		r.openAt("bare ReverseProxy, at half of its max", "bare proxy", half, get(bareAddr))
		r.openAt("bare ReverseProxy with a buffer pool, at half of the bare proxy's max", "bare proxy", half, get(pooledAddr))
		r.openAt("Warden's reverse proxy, at half of the bare proxy's max", "Warden", half, get(w.proxy))
	}
	r.closed("nginx auth_request to a server that does nothing", "nginx", closed, get(ngxPorts[1]))
	r.closed("nginx auth_request to Warden, cached token", "nginx", closed, get(ngxPorts[0]))
	if r.err != nil {
		return r.err
	}
	if err := os.WriteFile(c.mdPath, []byte(doorsReport(c, r.done)), 0o644); err != nil {
		return err
	}
	progress("wrote %s", c.mdPath)
	if r.failed {
		return fmt.Errorf("some requests failed or were answered unexpectedly; see the errors column")
	}
	return nil
}

// doorTarget sends reqs in turn; an answer must be 200.
func doorTarget(addr string, reqs [][]byte) load.Target {
	return load.Target{
		Dial:    load.HTTP(addr),
		Request: func(i int) []byte { return reqs[i%len(reqs)] },
		OK:      func(status int, _ []byte) bool { return status == 200 },
	}
}

// doorsReport renders the front doors' run as markdown: the scenarios,
// then each door against its target.
func doorsReport(c config, done []scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Front doors' load run, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s. %s.\n\n", machine(), nginxVersion())
	fmt.Fprintf(&b, "Load: %d keep-alive connections over loopback HTTP/1.1, one generator for every door; "+
		"a measured window of %s after a warm-up of %s. The app behind the proxies is a server that does nothing "+
		"(the floor); so is the auth server of the second nginx. The route table has one route, whose one "+
		"requirement is what the check API is asked.\n\n", c.concurrency, c.duration, c.warmup)
	b.WriteString("| scenario | load | answers | errors | throughput (/s) | p50 | p99 | p99.9 |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range done {
		r := s.res
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %s | %s |\n", s.name, s.load(), r.Requests, r.Errors,
			thousands(r.Throughput()), ms(r.Percentile(50)), ms(r.Percentile(99)), ms(r.Percentile(99.9)))
	}
	b.WriteString("\n| measure | figure | target | met |\n|---|---:|---:|---|\n")
	ratio := func(label, a, base string, target float64, p99 bool) {
		x, y := find(done, a), find(done, base)
		if x == nil || y == nil {
			return
		}
		v, op, ok := x.res.Throughput()/y.res.Throughput(), "≥", false
		if p99 {
			v, op = float64(x.res.Percentile(99))/float64(y.res.Percentile(99)), "≤"
			ok = v <= target
		} else {
			ok = v >= target
		}
		met := "yes"
		if !ok {
			met = "no"
		}
		fmt.Fprintf(&b, "| %s | %.2f × | %s %.1f × | %s |\n", label, v, op, target, met)
	}
	ratio("forward auth / check API, throughput", "forward auth, cached token", "check API, cached token", 0.8, false)
	ratio("Warden's reverse proxy / bare ReverseProxy, throughput", "Warden's reverse proxy, cached token", "bare ReverseProxy to the app", 0.8, false)
	ratio("Warden's reverse proxy / bare ReverseProxy, p99 at half of the bare proxy's max", "Warden's reverse proxy, at half of the bare proxy's max", "bare ReverseProxy, at half of its max", 1.3, true)
	ratio("Warden's reverse proxy / bare ReverseProxy with the same buffer pool, throughput", "Warden's reverse proxy, cached token", "bare ReverseProxy with a buffer pool", 0.8, false)
	ratio("Warden's reverse proxy / bare ReverseProxy with the same buffer pool, p99 at half of the bare proxy's max", "Warden's reverse proxy, at half of the bare proxy's max", "bare ReverseProxy with a buffer pool, at half of the bare proxy's max", 1.3, true)
	ratio("nginx auth_request to Warden / to a server that does nothing, throughput", "nginx auth_request to Warden, cached token", "nginx auth_request to a server that does nothing", 0.8, false)
	return b.String()
}

// nginxVersion is what nginx -v says, or that it is unknown.
func nginxVersion() string {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return "nginx (version unknown)"
	}
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}

// Package contract holds Warden's HTTP handlers to their OpenAPI document
// (docs/openapi.yaml) in tests. A Checker wraps a handler; every request it
// serves is routed to the document's operation, and the answer must be one
// the operation documents: a status it lists, the headers it requires, a
// body of its media type that matches its schema (closed objects refuse
// unknown fields). A failure is reported to the test, which fails.
//
// Requests are checked only as far as the answer makes them matter: tests
// send malformed requests on purpose, and those must get a documented
// refusal, which the answer's check covers. A request that does not match
// the document but is answered with success is a failure, though: the
// document, or the handler, is wrong. A path or method the document does
// not have must get net/http's 404 or 405; anything else means the handler
// serves a route the document lacks.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/wardenauthz/warden/docs"
)

// Listener is the listener a handler serves: its paths are the document's
// for that listener. The document gives the diagnostics listener's paths
// servers of their own.
type Listener int

// Listeners.
const (
	// API is --listen: the admin API, the check API, the doors, health.
	API Listener = iota
	// Diagnostics is --diag-listen: /healthz, /readyz, /metrics.
	Diagnostics
)

// Reporter receives failures; a *testing.T or *testing.B is one.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// maxBody bounds what a Checker keeps of a request or response body to
// check it; the handler still gets and sends all of it.
const maxBody = 16 << 20

// Checker checks the traffic of the handlers it wraps.
type Checker struct {
	rep      Reporter
	listener Listener
	checked  atomic.Int64
}

// New returns a Checker reporting to rep, for handlers of listener l.
func New(rep Reporter, l Listener) *Checker { return &Checker{rep: rep, listener: l} }

// Wrap returns h, serving the API listener, checked against the document.
func Wrap(rep Reporter, h http.Handler) http.Handler { return New(rep, API).Handler(h) }

// Checked is the number of requests checked so far.
func (c *Checker) Checked() int64 { return c.checked.Load() }

// Handler returns h with each of its answers checked.
func (c *Checker) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, whole := readPrefix(r)
		rec := &recorder{w: w}
		h.ServeHTTP(rec, r)
		c.checked.Add(1)
		if err := c.check(r, reqBody, whole, rec.answer()); err != nil {
			c.rep.Helper()
			c.rep.Errorf("contract: %s %s answered %d: %v", r.Method, r.URL.RequestURI(), rec.answer().status, err)
		}
	})
}

// readPrefix reads up to maxBody bytes of r's body and puts them back in
// front of the rest; whole says they are all of it.
func readPrefix(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	whole := err == nil && len(body) <= maxBody
	rest := r.Body
	r.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), rest}
	return body, whole
}

type readCloser struct {
	io.Reader
	io.Closer
}

// answer is what a handler answered.
type answer struct {
	status int
	header http.Header
	body   []byte
	whole  bool // body is all of it
}

// recorder passes an answer on and keeps a copy: the headers as they were
// when the status was written, and the body up to maxBody.
type recorder struct {
	w      http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
	long   bool
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status, r.header = status, r.w.Header().Clone()
	}
	r.w.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if room := maxBody - r.body.Len(); room < len(b) {
		r.body.Write(b[:max(room, 0)])
		r.long = true
	} else {
		r.body.Write(b)
	}
	return r.w.Write(b)
}

// Flush passes a flush on, so that streaming handlers stay streaming.
func (r *recorder) Flush() {
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

func (r *recorder) answer() answer {
	if r.status == 0 { // nothing written: net/http answers 200
		return answer{status: http.StatusOK, header: r.w.Header().Clone(), whole: true}
	}
	return answer{status: r.status, header: r.header, body: r.body.Bytes(), whole: !r.long}
}

// spec is the document as the checks use it.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	// diagnostics holds the paths of the diagnostics listener.
	diagnostics map[string]bool
	// rest holds the prefixes of paths whose last parameter spans the rest
	// of the path (x-warden-rest): the prefix, without the parameter.
	rest []string
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	data, err := docs.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("loading docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not valid: %w", err)
	}
	s := &spec{doc: doc, diagnostics: map[string]bool{}}
	// Routing goes by path alone: servers name deployments' addresses,
	// which tests do not listen on. The paths with servers of their own
	// are the diagnostics listener's.
	doc.Servers = nil
	for path, item := range doc.Paths.Map() {
		if len(item.Servers) > 0 {
			s.diagnostics[path] = true
			item.Servers = nil
		}
		for _, p := range item.Parameters {
			if p.Value == nil || p.Value.In != openapi3.ParameterInPath || p.Value.Extensions["x-warden-rest"] != true {
				continue
			}
			prefix, ok := strings.CutSuffix(path, "/{"+p.Value.Name+"}")
			if !ok {
				return nil, fmt.Errorf("%s: x-warden-rest is for the last segment, not {%s}", path, p.Value.Name)
			}
			s.rest = append(s.rest, prefix)
		}
	}
	if s.router, err = gorillamux.NewRouter(doc); err != nil {
		return nil, fmt.Errorf("routing docs/openapi.yaml: %w", err)
	}
	return s, nil
})

// options are kin-openapi's: every problem at once, and no status the
// operation does not list.
func options() *openapi3filter.Options {
	o := &openapi3filter.Options{
		MultiError:            true,
		IncludeResponseStatus: true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	}
	o.WithCustomSchemaErrorFunc(schemaError)
	return o
}

// schemaError says where a value breaks its schema and why, without the
// schema's dump: the failure quotes the answer itself.
func schemaError(err *openapi3.SchemaError) string {
	return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
}

// check checks one exchange; reqBody is the request's body, all of it when
// whole.
func (c *Checker) check(r *http.Request, reqBody []byte, whole bool, a answer) error {
	s, err := loadSpec()
	if err != nil {
		return err
	}
	req := routable(r, reqBody, s.rest)
	route, params, err := s.router.FindRoute(req)
	if err == nil && s.diagnostics[route.Path] != (c.listener == Diagnostics) {
		err = routers.ErrPathNotFound // the other listener's path
	}
	if err != nil {
		if !errors.Is(err, routers.ErrPathNotFound) && !errors.Is(err, routers.ErrMethodNotAllowed) {
			return fmt.Errorf("routing the request: %w", err)
		}
		// Not a route of the document: net/http's own refusal is all the
		// handler may answer.
		if a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("the document has no operation %s %s for this listener, but the handler served it", r.Method, r.URL.EscapedPath())
	}
	op := fmt.Sprintf("operation %s (%s %s)", route.Operation.OperationID, route.Method, route.Path)
	if route.Operation.RequestBody != nil && len(reqBody) > 0 {
		// Warden reads bodies as JSON whatever their Content-Type says,
		// but for those the document also takes as YAML.
		yaml := strings.HasPrefix(r.Header.Get("Content-Type"), "application/yaml") && route.Operation.RequestBody.Value.Content.Get("application/yaml") != nil
		if !yaml {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options()}
	if a.status/100 == 2 && whole {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("%s: the request does not match the document, yet it succeeded: %v", op, err)
		}
	}
	doc := route.Operation.Responses.Status(a.status)
	if doc == nil {
		return fmt.Errorf("%s does not document status %d (it documents %s)", op, a.status, strings.Join(codes(route.Operation), ", "))
	}
	if !a.whole {
		return fmt.Errorf("%s: an answer over %d bytes is not checked", op, maxBody)
	}
	switch content := doc.Value.Content; {
	case len(content) == 0 && len(a.body) > 0:
		return fmt.Errorf("%s: status %d has no body, but the answer has %d bytes: %s", op, a.status, len(a.body), clip(a.body))
	case len(content) > 0 && len(a.body) == 0 && r.Method != http.MethodHead:
		return fmt.Errorf("%s: status %d has a body, but the answer has none", op, a.status)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: a.header, Options: options()}
	out.SetBodyBytes(a.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		if len(a.body) > 0 {
			return fmt.Errorf("%s: %v\nthe answer: %s", op, err, clip(a.body))
		}
		return fmt.Errorf("%s: %v", op, err)
	}
	return nil
}

// routable returns a copy of r to route and check: its body the one read,
// and a path whose x-warden-rest part is one segment, as the router needs.
func routable(r *http.Request, body []byte, rest []string) *http.Request {
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	escaped := r.URL.EscapedPath()
	for _, prefix := range rest {
		tail, ok := strings.CutPrefix(escaped, prefix+"/")
		if !ok || !strings.Contains(tail, "/") {
			continue
		}
		u := *r.URL
		unescaped, err := url.PathUnescape(tail)
		if err != nil {
			break
		}
		u.Path = prefix + "/" + unescaped
		u.RawPath = prefix + "/" + strings.ReplaceAll(tail, "/", "%2F")
		req.URL = &u
		break
	}
	return req
}

// codes lists the statuses an operation documents.
func codes(op *openapi3.Operation) []string {
	var out []string
	for code := range op.Responses.Map() {
		out = append(out, code)
	}
	slices.Sort(out)
	return out
}

// clip shortens a body for a message.
func clip(b []byte) string {
	const n = 600
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

package routes

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/wardenauthz/warden/sdk/model"
)

// Table is a compiled route table: safe for concurrent use, never changed.
type Table struct {
	spec   *Spec
	mux    *http.ServeMux
	routes []compiled
}

// compiled is a route ready to match.
type compiled struct {
	route  *Route
	params []string
	// reqs are the route's requirements with their resources cut into
	// literal parts and parameters, so that binding them is one
	// allocation each.
	reqs []template
}

// template is a requirement whose resource is literal parts and path
// parameters (by their index in params).
type template struct {
	action string
	parts  []part
	// size is the literal parts' length, a floor for the bound resource.
	size int
}

type part struct {
	lit   string
	param int // -1 for a literal part
}

// cutTemplate cuts a resource's {{name}} templates into parts; a name is
// one of params (the spec's Validate made sure).
func cutTemplate(action, resource string, params []string) (template, error) {
	t := template{action: action}
	for resource != "" {
		i := strings.Index(resource, "{{")
		if i < 0 {
			t.parts = append(t.parts, part{lit: resource, param: -1})
			t.size += len(resource)
			break
		}
		end := strings.Index(resource[i+2:], "}}")
		if end < 0 {
			return t, fmt.Errorf("unclosed '{{' at %q", resource[i:])
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: resource[:i], param: -1})
			t.size += i
		}
		name := strings.TrimSpace(resource[i+2 : i+2+end])
		idx := -1
		for j, p := range params {
			if p == name {
				idx = j
			}
		}
		if idx < 0 {
			return t, fmt.Errorf("{{%s}} is not a parameter of the route", name)
		}
		t.parts = append(t.parts, part{param: idx})
		resource = resource[i+4+end:]
	}
	return t, nil
}

// conflict finds the other pattern in ServeMux's conflict message.
var conflict = regexp.MustCompile(`conflicts with pattern "([^"]*)"`)

// Compile builds the matcher of a checked table. Two routes whose patterns
// conflict (ServeMux would not know which to choose) are refused, naming
// both.
func Compile(s *Spec) (*Table, error) {
	t := &Table{spec: s, mux: http.NewServeMux(), routes: make([]compiled, len(s.Routes))}
	owner := map[string]string{} // pattern → route name
	var errs []error
	for i := range s.Routes {
		r := &s.Routes[i]
		params, err := patternParams(r.Path)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		cr := compiled{route: r, params: params}
		for _, a := range r.Security.Authorization {
			tmpl, err := cutTemplate(a.Action, a.Resource, params)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Name, err)
			}
			cr.reqs = append(cr.reqs, tmpl)
		}
		t.routes[i] = cr
		methods := r.Methods
		if len(methods) == 0 {
			methods = []string{""}
		}
		for _, m := range methods {
			pattern := strings.ToLower(r.Host) + r.Path
			if m != "" {
				pattern = m + " " + pattern
			}
			if err := t.register(pattern, i); err != nil {
				other := "another route"
				if sub := conflict.FindStringSubmatch(err.Error()); sub != nil {
					if name, ok := owner[sub[1]]; ok {
						other = fmt.Sprintf("route %q's %q", name, sub[1])
					}
				}
				errs = append(errs, fmt.Errorf("route %q: its pattern %q conflicts with %s: both match some requests, and neither is more specific", r.Name, pattern, other))
				continue
			}
			owner[pattern] = r.Name
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// register adds a pattern, turning ServeMux's panic on a conflict into an
// error.
func (t *Table) register(pattern string, route int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	t.mux.Handle(pattern, matched(route))
	return nil
}

// matched is the handler of a route's patterns: it tells the capture which
// route matched, and the request that carries its path values.
type matched int

func (m matched) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := w.(*capture); ok {
		c.route, c.req = int(m), r
	}
}

// capture receives a match; as a ResponseWriter it drops what ServeMux
// writes when nothing matched (a 404 or a redirect).
type capture struct {
	route int
	req   *http.Request
}

func (c *capture) Header() http.Header         { return http.Header{} }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(int)             {}

// Match is a request matched against a table.
type Match struct {
	// Route is the route that matched; nil when none did and the table's
	// default applies.
	Route *Route
	// Spec is the security spec that applies: the route's, or the
	// default's (nil when the default allows or denies outright).
	Spec *model.SecuritySpec
	// Requirements are the spec's authorization with the route's
	// parameters bound into its templates.
	Requirements []model.Permission
}

// Name is the matched route's name, or "default".
func (m Match) Name() string {
	if m.Route == nil {
		return "default"
	}
	return m.Route.Name
}

// matching is what one Match uses, pooled: the request ServeMux matches
// and the capture it answers to.
type matching struct {
	req  http.Request
	url  url.URL
	c    capture
	vals [8]string
}

var matchings = sync.Pool{New: func() any { return new(matching) }}

// Match finds the route for a request: method, host (a port and a
// trailing dot are ignored, case too) and a path as CleanPath returns it.
// A parameter bound into a template that would carry a '/', or make a
// resource that breaks the grammar, is an error: the request is refused.
func (t *Table) Match(method, host, path string) (Match, error) {
	mt := matchings.Get().(*matching)
	defer func() {
		*mt = matching{}
		matchings.Put(mt)
	}()
	mt.url.Path = path
	mt.req.Method, mt.req.Host, mt.req.URL = method, normalHost(host), &mt.url
	mt.c.route = -1
	t.mux.ServeHTTP(&mt.c, &mt.req)
	if mt.c.route < 0 {
		m := Match{Spec: t.spec.Default.Spec}
		if m.Spec != nil {
			m.Requirements = m.Spec.Authorization
		}
		return m, nil
	}
	cr := &t.routes[mt.c.route]
	m := Match{Route: cr.route, Spec: &cr.route.Security}
	if len(cr.reqs) == 0 {
		return m, nil
	}
	vals := mt.vals[:0]
	if len(cr.params) > len(mt.vals) {
		vals = make([]string, 0, len(cr.params))
	}
	for _, p := range cr.params {
		vals = append(vals, mt.c.req.PathValue(p))
	}
	m.Requirements = make([]model.Permission, len(cr.reqs))
	for i, tmpl := range cr.reqs {
		res, err := tmpl.bind(cr.params, vals)
		if err != nil {
			return Match{}, fmt.Errorf("route %q: %w", cr.route.Name, err)
		}
		m.Requirements[i] = model.Permission{Action: tmpl.action, Resource: res}
	}
	return m, nil
}

// bind builds a requirement's resource from the path's values; a value
// carrying '/' is refused, and so is a resource that breaks the grammar.
func (t template) bind(params, vals []string) (string, error) {
	if len(t.parts) == 1 && t.parts[0].param < 0 {
		return t.parts[0].lit, nil
	}
	size := t.size
	for _, p := range t.parts {
		if p.param >= 0 {
			if strings.IndexByte(vals[p.param], '/') >= 0 {
				return "", fmt.Errorf("the path parameter %q carries a '/', which a resource template does not take", params[p.param])
			}
			size += len(vals[p.param])
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, p := range t.parts {
		if p.param >= 0 {
			b.WriteString(vals[p.param])
		} else {
			b.WriteString(p.lit)
		}
	}
	res := b.String()
	if err := model.ValidateResource(res); err != nil {
		return "", fmt.Errorf("the bound resource: %w", err)
	}
	return res, nil
}

// normalHost lowers a host's case and drops its port and a trailing dot.
func normalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

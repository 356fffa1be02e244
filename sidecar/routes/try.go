package routes

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
)

// Test is a request tried against a table: the route it matches, what
// the route requires with its parameters bound, and what a front door
// enforcing the table answers. `warden routes test -o json` prints this
// shape, and the admin API's route test answers it.
type Test struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Route is the matched route's name, "default" when none matches, ""
	// when the table refuses the request; Path is the route's pattern.
	Route string `json:"route"`
	Path  string `json:"path,omitempty"`
	Mode  string `json:"mode"`
	// Authentication is the spec's, "" when the default allows or denies
	// outright.
	Authentication string             `json:"authentication,omitempty"`
	Requirements   []model.Permission `json:"requirements"`
	// Hooks are the route's hooks, by name: Try lists them, TryHere runs
	// them as the doors do.
	Hooks []string `json:"hooks,omitempty"`
	// Let says whether a front door lets the request through; Decision is
	// what enforcing answers.
	Let      bool           `json:"let"`
	Decision model.Decision `json:"decision"`
}

// Decider decides requirements for the tried request's token: every one
// must be met, as a front door requires them.
type Decider func(reqs []model.Permission) (model.Decision, error)

// ParseTestURL reads the URL of a request to try: a path (/…) or an
// absolute URL, whose host a route's host is matched against.
func ParseTestURL(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || !strings.HasPrefix(u.EscapedPath(), "/") {
		return nil, fmt.Errorf("the URL %q must be a path (/…) or an absolute URL", target)
	}
	return u, nil
}

// ValidMethod says whether m is an HTTP method as a route's methods are
// written: an RFC 9110 token in upper case.
func ValidMethod(m string) bool { return method.MatchString(m) }

// Try matches a request (method in upper case, target as ParseTestURL
// reads it) and decides it as a front door does, with decide deciding a
// route's requirements elsewhere (the CLI asks the check API) and the
// route's hooks listed, not run: an unmatched request gets the table's
// default, a route with authentication none is allowed, and decide
// answers for a route that authenticates; with authentication optional,
// its 401 is allowed unauthenticated. A request the table refuses
// (CleanPath, or a parameter a template refuses) is decided 400, as a
// door answers it. Only a target ParseTestURL refuses, or decide's error,
// is an error.
func (t *Table) Try(method, target string, decide Decider) (Test, error) {
	return t.try(method, target, "", func(_ Request, m Match, out *Test) error {
		switch {
		case m.Spec == nil && t.spec.Default.Allow:
			out.Decision = model.Decision{Allow: true, Status: 200, Reason: "no route matches; the table's default allows"}
		case m.Spec == nil:
			out.Decision = model.Decision{Status: 403, Reason: "no route matches; the table's default denies"}
		case m.Spec.Mode() == model.AuthNone:
			out.Decision = model.Decision{Allow: true, Status: 200, Reason: "the route requires no authentication"}
		default:
			d, err := decide(m.Requirements)
			if err != nil {
				return err
			}
			if !d.Allow && d.Status == 401 && m.Spec.Mode() == model.AuthOptional {
				d = model.Decision{Allow: true, Status: 200, Reason: "unauthenticated: " + d.Reason, Revision: d.Revision}
			}
			out.Decision = d
		}
		return nil
	})
}

// TryHere is Try with the request decided by Decide through eng, in this
// process, with token: exactly as a front door of this node decides it,
// the route's hooks included.
func (t *Table) TryHere(ctx context.Context, eng *sidecar.Engine, method, target, token string) (Test, error) {
	return t.try(method, target, token, func(req Request, _ Match, out *Test) error {
		o, err := t.Decide(ctx, eng, req)
		if err != nil {
			return err
		}
		out.Decision = o.Decision.Decision
		return nil
	})
}

// try describes what the table matches for the request and has decide
// fill in the decision of a request that it matched.
func (t *Table) try(method, target, token string, decide func(Request, Match, *Test) error) (Test, error) {
	u, err := ParseTestURL(target)
	if err != nil {
		return Test{}, err
	}
	out := Test{Method: method, URL: target, Mode: ModeEnforce, Requirements: []model.Permission{}}
	uri := u.EscapedPath()
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	path, err := CleanPath(uri)
	var m Match
	if err == nil {
		m, err = t.Match(method, u.Host, path)
	}
	if err != nil {
		out.Decision = model.Decision{Status: 400, Reason: err.Error()}
		return out, nil
	}
	out.Route = m.Name()
	if m.Requirements != nil {
		out.Requirements = m.Requirements
	}
	if m.Route != nil {
		out.Path, out.Hooks = m.Route.Path, m.Route.Hooks
		if m.Route.Mode == ModeDryRun {
			out.Mode = ModeDryRun
		}
	}
	if m.Spec != nil {
		out.Authentication = m.Spec.Mode()
	}
	if err := decide(Request{Method: method, Host: u.Host, URI: uri, Token: token}, m, &out); err != nil {
		return Test{}, err
	}
	out.Let = out.Decision.Allow || out.Mode == ModeDryRun
	return out, nil
}

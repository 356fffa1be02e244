package model

import (
	"errors"
	"fmt"
	"strings"
)

// Authentication modes of a security spec.
const (
	AuthNone     = "none"
	AuthOptional = "optional"
	AuthRequired = "required"
)

// SecuritySpec is Fusebit's function security, applied to a route of the app
// behind the sidecar. Resources in Authorization may use {{name}} templates,
// bound from the matched route's path parameters.
type SecuritySpec struct {
	Authentication string       `json:"authentication,omitempty" yaml:"authentication,omitempty"`
	Authorization  []Permission `json:"authorization,omitempty" yaml:"authorization,omitempty"`
}

// Mode returns the spec's authentication mode; an empty one is "none".
func (s SecuritySpec) Mode() string {
	if s.Authentication == "" {
		return AuthNone
	}
	return s.Authentication
}

// Validate reports every problem with the spec at once. params, when not
// nil, lists the path parameters templates may name.
func (s SecuritySpec) Validate(params []string) error {
	var errs []error
	switch s.Mode() {
	case AuthNone:
		if len(s.Authorization) > 0 {
			errs = append(errs, errors.New(`"authorization" is not allowed when "authentication" is "none"`))
		}
	case AuthOptional, AuthRequired:
		if len(s.Authorization) == 0 {
			errs = append(errs, fmt.Errorf(`"authorization" must contain at least 1 items when "authentication" is %q`, s.Authentication))
		}
	default:
		errs = append(errs, fmt.Errorf(`"authentication" must be one of [none, optional, required], not %q`, s.Authentication))
	}
	for i, p := range s.Authorization {
		if p.Action == "" {
			errs = append(errs, fmt.Errorf(`"authorization[%d].action" is required`, i))
		}
		if p.Resource == "" {
			errs = append(errs, fmt.Errorf(`"authorization[%d].resource" is required`, i))
		}
		names, err := TemplateNames(p.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf(`"authorization[%d].resource": %w`, i, err))
			continue
		}
		if params != nil {
			for _, n := range names {
				if !contains(params, n) {
					errs = append(errs, fmt.Errorf(`"authorization[%d].resource" names {{%s}}, which is not a parameter of the route`, i, n))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TemplateNames returns the names of the {{name}} templates in s, in order.
// Whitespace around a name is ignored. An unclosed "{{" or an empty name is
// an error.
func TemplateNames(s string) ([]string, error) {
	var names []string
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return names, nil
		}
		end := strings.Index(s[i+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{{' at %q", s[i:])
		}
		name := strings.TrimSpace(s[i+2 : i+2+end])
		if name == "" || strings.ContainsAny(name, "{}") {
			return nil, fmt.Errorf("bad template name in %q", s[i:i+4+end])
		}
		names = append(names, name)
		s = s[i+4+end:]
	}
}

// ExpandTemplate replaces every {{name}} in s with params[name]. A name
// missing from params is an error.
func ExpandTemplate(s string, params map[string]string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		end := strings.Index(s[i+2:], "}}")
		if end < 0 {
			return "", fmt.Errorf("unclosed '{{' at %q", s[i:])
		}
		name := strings.TrimSpace(s[i+2 : i+2+end])
		v, ok := params[name]
		if !ok {
			return "", fmt.Errorf("template {{%s}} has no value", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+4+end:]
	}
}

// Caller is what a spec evaluation knows of the request's token.
type Caller struct {
	// Present says a token was sent; Valid says it verified and resolved to
	// an agent. Reason says why an invalid token was refused.
	Present, Valid bool
	Reason         string
	// Permissions are the caller's effective permissions when Valid.
	Permissions []Permission
}

// SpecResult is the outcome of evaluating a security spec.
type SpecResult struct {
	Allow bool
	// Status is 200, 401 or 403.
	Status int
	Reason string
	// Unauthenticated is set when an optional spec let a request through
	// without a valid token.
	Unauthenticated bool
}

// Evaluate applies the spec to a caller. With "required", a missing or
// invalid token is 401; with "optional", a missing or invalid token passes
// unauthenticated, but a valid token lacking a requirement is 403. Every
// requirement must be covered.
func (s SecuritySpec) Evaluate(c Caller, params map[string]string) SpecResult {
	mode := s.Mode()
	if mode == AuthNone {
		return SpecResult{Allow: true, Status: 200, Reason: "no authentication required"}
	}
	if !c.Valid {
		reason := c.Reason
		if !c.Present {
			reason = "missing bearer token"
		}
		if mode == AuthOptional {
			return SpecResult{Allow: true, Status: 200, Reason: "unauthenticated: " + reason, Unauthenticated: true}
		}
		return SpecResult{Status: 401, Reason: reason}
	}
	for _, req := range s.Authorization {
		res, err := ExpandTemplate(req.Resource, params)
		if err != nil {
			return SpecResult{Status: 403, Reason: "security spec: " + err.Error()}
		}
		if _, ok := Covers(c.Permissions, req.Action, res); !ok {
			return SpecResult{Status: 403, Reason: fmt.Sprintf("no grant allows '%s' on '%s'", req.Action, NormalizeResource(res))}
		}
	}
	return SpecResult{Allow: true, Status: 200, Reason: "allowed"}
}

// Package routes maps an app's requests to Fusebit security specs: a route
// table, what the front doors (forward auth, Envoy, the reverse proxy)
// share. A table is parsed and checked whole (Parse), compiled into a
// matcher with net/http's ServeMux syntax and precedence (Compile), and a
// request is matched and decided through the engine (Table.Decide).
package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenauthz/warden/sdk/model"
	"gopkg.in/yaml.v3"
)

// MaxTableSize is the largest route table parsed.
const MaxTableSize = 1 << 20

// Modes of a route.
const (
	// ModeEnforce denies what the spec denies (the default).
	ModeEnforce = "enforce"
	// ModeDryRun decides, logs and counts, but allows.
	ModeDryRun = "dry-run"
)

// Spec is a route table as written.
type Spec struct {
	// Default is what an unmatched request gets: "deny" (the default),
	// "allow", or a security spec.
	Default Default `yaml:"default" json:"default"`
	Routes  []Route `yaml:"routes" json:"routes"`
}

// Route maps requests to a security spec.
type Route struct {
	Name string `yaml:"name" json:"name"`
	// Methods the route matches; all when empty.
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	// Host, when set, is the only host the route matches.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Path is a net/http ServeMux path pattern: {name}, {name...}, {$}.
	Path     string             `yaml:"path" json:"path"`
	Security model.SecuritySpec `yaml:"security" json:"security"`
	// Hooks are policy hooks for this route, by name.
	Hooks []string `yaml:"hooks,omitempty" json:"hooks,omitempty"`
	// Mode is ModeEnforce (the default) or ModeDryRun.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// Default is what an unmatched request gets.
type Default struct {
	// Allow, when no Spec is set: allow (true) or deny with 403 (false).
	Allow bool
	// Spec, when set, decides unmatched requests.
	Spec *model.SecuritySpec
}

// UnmarshalYAML takes "deny", "allow" or a security spec.
func (d *Default) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "deny", "":
			*d = Default{}
		case "allow":
			*d = Default{Allow: true}
		default:
			return fmt.Errorf(`line %d: "default" must be deny, allow or a security spec, not %q`, n.Line, n.Value)
		}
		return nil
	}
	var spec model.SecuritySpec
	dec := n.Decode(&spec)
	if dec != nil {
		return dec
	}
	*d = Default{Spec: &spec}
	return nil
}

// MarshalYAML writes the default back as it is read.
func (d Default) MarshalYAML() (any, error) {
	switch {
	case d.Spec != nil:
		return d.Spec, nil
	case d.Allow:
		return "allow", nil
	}
	return "deny", nil
}

// UnmarshalJSON takes "deny", "allow" or a security spec, as
// UnmarshalYAML does.
func (d *Default) UnmarshalJSON(data []byte) error {
	var word string
	if json.Unmarshal(data, &word) == nil {
		switch word {
		case "deny", "":
			*d = Default{}
		case "allow":
			*d = Default{Allow: true}
		default:
			return fmt.Errorf(`"default" must be deny, allow or a security spec, not %q`, word)
		}
		return nil
	}
	var spec model.SecuritySpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf(`"default" must be deny, allow or a security spec: %w`, err)
	}
	*d = Default{Spec: &spec}
	return nil
}

// MarshalJSON writes the default back as it is read.
func (d Default) MarshalJSON() ([]byte, error) {
	v, _ := d.MarshalYAML()
	return json.Marshal(v)
}

// method is an HTTP method: an RFC 9110 token, upper case by convention.
var method = regexp.MustCompile(`^[A-Z][A-Z0-9!#$%&'*+.^_|~-]*$`)

// wildcard finds a path pattern's {name} and {name...} wildcards.
var wildcard = regexp.MustCompile(`\{([^{}]*)\}`)

// Hooks returns the names of the hooks the table's routes choose, each
// once, in the order they first appear.
func (s *Spec) Hooks() []string {
	var names []string
	for _, r := range s.Routes {
		for _, h := range r.Hooks {
			if !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	return names
}

// typeNames says the decoder's Go types in a table's words.
var typeNames = strings.NewReplacer("in type routes.Spec", "in a route table", "in type routes.Route", "in a route",
	"in type model.SecuritySpec", "in a security spec", "in type model.Permission", "in a requirement", "routes.Default", "a default")

// Parse reads a route table from YAML (JSON is YAML too) and checks it
// whole: every problem is reported at once, naming its route and field.
func Parse(data []byte) (*Spec, error) {
	if len(data) > MaxTableSize {
		return nil, fmt.Errorf("the route table is %d bytes, over the limit of %d", len(data), MaxTableSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:"))
		return nil, fmt.Errorf("the route table: %s", typeNames.Replace(msg))
	}
	return &s, s.Validate()
}

// Validate reports every problem with the table at once, each naming its
// route and field. Conflicting patterns are found by Compile.
func (s *Spec) Validate() error {
	var errs []error
	if s.Default.Spec != nil {
		if err := s.Default.Spec.Validate([]string{}); err != nil {
			errs = append(errs, fmt.Errorf(`"default": %w`, err))
		}
	}
	names := map[string]bool{}
	for i, r := range s.Routes {
		where := fmt.Sprintf("route %d", i)
		if r.Name != "" {
			where = fmt.Sprintf("route %q", r.Name)
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
		}
		switch {
		case r.Name == "":
			bad(`"name" is required`)
		case names[r.Name]:
			bad("the name is used by another route")
		}
		names[r.Name] = true
		for _, m := range r.Methods {
			if !method.MatchString(m) {
				bad(`"methods": %q is not an HTTP method`, m)
			}
		}
		if strings.ContainsAny(r.Host, "/ \t") {
			bad(`"host" %q is not a host name`, r.Host)
		}
		params, err := patternParams(r.Path)
		if err != nil {
			bad(`"path": %v`, err)
			continue
		}
		if err := r.Security.Validate(params); err != nil {
			for _, e := range unjoin(err) {
				bad(`"security": %v`, e)
			}
		}
		switch r.Mode {
		case "", ModeEnforce, ModeDryRun:
		default:
			bad(`"mode" must be %s or %s, not %q`, ModeEnforce, ModeDryRun, r.Mode)
		}
		if len(r.Hooks) > 0 && r.Security.Mode() == model.AuthNone {
			bad(`"hooks": a route with authentication: none decides nothing for hooks to weigh in on; give it authentication: optional or required`)
		}
		for _, h := range r.Hooks {
			if model.ValidateHookName(h) != nil {
				bad(`"hooks": %q is not a hook name: it must match /%s/`, h, model.HookNamePattern)
			}
		}
	}
	return errors.Join(errs...)
}

// patternParams checks a path pattern and returns its wildcards' names.
func patternParams(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%q must start with '/'", path)
	}
	params := []string{}
	for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
		name := strings.TrimSuffix(m[1], "...")
		if name == "$" {
			continue
		}
		params = append(params, name)
	}
	// ServeMux checks the rest of the syntax; a pattern it refuses is
	// refused here, in its words.
	if err := checkPattern(path); err != nil {
		return nil, err
	}
	return params, nil
}

// checkPattern asks ServeMux whether it takes a path pattern.
func checkPattern(path string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	http.NewServeMux().Handle(path, http.NotFoundHandler())
	return nil
}

// unjoin splits a joined error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

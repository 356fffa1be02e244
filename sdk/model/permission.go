package model

import "fmt"

// Covers reports whether the permission set covers the requirement
// {action, resource}: some grant matches both. It returns the first such
// grant.
func Covers(set []Permission, action, resource string) (Permission, bool) {
	for _, g := range set {
		if ActionMatches(g.Action, action) && ResourceCovers(g.Resource, resource) {
			return g, true
		}
	}
	return Permission{}, false
}

// NormalizePermissions returns perms with every resource normalized. It
// returns perms itself when nothing changes.
func NormalizePermissions(perms []Permission) []Permission {
	for i, p := range perms {
		if NormalizeResource(p.Resource) != p.Resource {
			out := make([]Permission, len(perms))
			copy(out, perms[:i])
			for j := i; j < len(perms); j++ {
				out[j] = Permission{Action: perms[j].Action, Resource: NormalizeResource(perms[j].Resource)}
			}
			return out
		}
	}
	return perms
}

// NarrowError says why a token's inline permissions were refused.
type NarrowError struct {
	Index      int
	Permission Permission
	Missing    string // "action" or "resource" when the entry lacks one
}

func (e *NarrowError) Error() string {
	if e.Missing != "" {
		return fmt.Sprintf("inline permission %d has no %s", e.Index, e.Missing)
	}
	return fmt.Sprintf("inline permission to perform '%s' on '%s' is not covered by the agent's grants",
		e.Permission.Action, e.Permission.Resource)
}

// Narrow applies a token's inline permissions to the agent's grants. Every
// inline entry must name an action and a resource and be covered by the
// agent's grants; then the inline entries (normalized) replace the agent's
// permissions. Inline permissions can only narrow what the agent holds.
func Narrow(agent, inline []Permission) ([]Permission, error) {
	for i, p := range inline {
		switch {
		case p.Action == "":
			return nil, &NarrowError{Index: i, Permission: p, Missing: "action"}
		case p.Resource == "":
			return nil, &NarrowError{Index: i, Permission: p, Missing: "resource"}
		}
		if _, ok := Covers(agent, p.Action, p.Resource); !ok {
			return nil, &NarrowError{Index: i, Permission: p}
		}
	}
	return NormalizePermissions(inline), nil
}

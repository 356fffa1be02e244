package model

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateAction reports why an action breaks the grammar, or nil: it is
// ":"-separated segments, each a lone "*" or a non-empty run of letters,
// digits, "-" and "_", with nothing after a "*". Because "*" allows at once,
// "*:get" would match every action, which is never what its author meant.
// Matching stays case-sensitive: "FUNCTION:GET" is valid and matches only
// itself. The grammar holds wherever an action comes from: a grant, an
// inline permission or a check. It never allocates on a valid action.
func ValidateAction(action string) error {
	if action == "" {
		return fmt.Errorf("the action must not be empty")
	}
	rest, i := action, 0
	for {
		seg, more, found := strings.Cut(rest, ":")
		switch {
		case seg == "":
			return fmt.Errorf("the action '%s' has an empty segment (segment %d); segments are separated by one ':'", action, i+1)
		case seg == "*":
			if found {
				return fmt.Errorf("the action '%s' has segments after '*'; '*' matches everything after it, so use '%s'",
					action, action[:len(action)-len(more)-1])
			}
		default:
			for j := 0; j < len(seg); j++ {
				if !actionByte(seg[j]) {
					return fmt.Errorf("the action '%s' has the segment '%s', which may hold only letters, digits, '-' and '_', or be a lone '*'",
						action, seg)
				}
			}
		}
		if !found {
			return nil
		}
		rest, i = more, i+1
	}
}

func actionByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// ValidateResource reports why a resource breaks the grammar, or nil. After
// normalization (a leading and a trailing "/" added when missing) it must
// have no empty, "." or ".." segment, no white space or control character,
// no "{{" (a template left unfilled), and be UTF-8. "%" stays: issuer ids
// in admin paths are escaped, and resources are never decoded. A resource
// that breaks it is refused wherever it comes from, never matched
// literally: otherwise a grant on "sub-1/" would cover "sub-1/../sub-2/"
// for whoever forwards paths. It never allocates on a valid resource.
func ValidateResource(resource string) error {
	if resource == "" {
		return fmt.Errorf("the resource must not be empty")
	}
	if !utf8.ValidString(resource) {
		return fmt.Errorf("the resource %s is not valid UTF-8", quoteResource(resource))
	}
	for _, r := range resource {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("the resource %s holds white space or a control character (%U)", quoteResource(resource), r)
		}
	}
	if strings.Contains(resource, "{{") {
		return fmt.Errorf("the resource %s holds '{{', a template left unfilled", quoteResource(resource))
	}
	inner := strings.TrimPrefix(resource, "/")
	inner = strings.TrimSuffix(inner, "/")
	if inner == "" { // "/" or "//"
		if resource != "/" {
			return fmt.Errorf("the resource %s has an empty segment ('//')", quoteResource(resource))
		}
		return nil
	}
	for rest := inner; ; {
		seg, more, found := strings.Cut(rest, "/")
		switch seg {
		case "":
			return fmt.Errorf("the resource %s has an empty segment ('//')", quoteResource(resource))
		case ".", "..":
			return fmt.Errorf("the resource %s has a '%s' segment; resources are matched as written, never resolved", quoteResource(resource), seg)
		}
		if !found {
			return nil
		}
		rest = more
	}
}

// quoteResource quotes a resource for a message, escaping what would not
// print and cutting it to a sane length.
func quoteResource(s string) string {
	const maxLen = 120
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	q := fmt.Sprintf("%q", s)
	return "'" + q[1:len(q)-1] + "'"
}

// ValidatePermission reports why a permission breaks the grammar, naming
// its field ("action" or "resource") in the message.
func ValidatePermission(p Permission) error {
	if err := ValidateAction(p.Action); err != nil {
		return &FieldError{Field: "action", Err: err}
	}
	if err := ValidateResource(p.Resource); err != nil {
		return &FieldError{Field: "resource", Err: err}
	}
	return nil
}

// FieldError is a problem with one field of a request or a record.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf(`"%s": %s`, e.Field, e.Err) }

func (e *FieldError) Unwrap() error { return e.Err }

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
// for whoever forwards paths.
//
// Every check validates its resource, so a valid one costs one pass over
// its bytes and no allocation; the reason a resource is invalid is worked
// out only when it is.
func ValidateResource(resource string) error {
	if validResource(resource) {
		return nil
	}
	return resourceProblem(resource)
}

// validResource is the grammar in one pass over the bytes: most bytes are
// judged by one table lookup, and only runes past ASCII are decoded.
func validResource(s string) bool {
	if s == "" {
		return false
	}
	segStart := 0
	if s[0] == '/' {
		segStart = 1
	}
	for i := segStart; i < len(s); {
		switch resourceBytes[s[i]] {
		case byteOK:
			i++
			continue
		case byteBad:
			return false
		case byteBrace:
			if i+1 < len(s) && s[i+1] == '{' {
				return false
			}
		case byteSlash:
			if !validSegment(s[segStart:i]) {
				return false
			}
			segStart = i + 1
		case byteMulti:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || unicode.IsSpace(r) || unicode.IsControl(r) {
				return false
			}
			i += size
			continue
		}
		i++
	}
	// The last segment: empty after a trailing "/", which is fine.
	last := s[segStart:]
	return last == "" || validSegment(last)
}

// Classes of a resource's bytes.
const (
	byteOK = iota
	byteBad
	byteBrace
	byteSlash
	byteMulti
)

// resourceBytes classes every byte: control characters and the space are
// bad, "{" and "/" need a look around, bytes past ASCII start a rune.
var resourceBytes = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c <= ' ' || c == 0x7f:
			t[c] = byteBad
		case c == '{':
			t[c] = byteBrace
		case c == '/':
			t[c] = byteSlash
		case c >= utf8.RuneSelf:
			t[c] = byteMulti
		}
	}
	return t
}()

func validSegment(seg string) bool { return seg != "" && seg != "." && seg != ".." }

// resourceProblem says why a resource that validResource refused breaks
// the grammar.
func resourceProblem(resource string) error {
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
	for rest := inner; resource != "/"; {
		seg, more, found := strings.Cut(rest, "/")
		switch seg {
		case "":
			return fmt.Errorf("the resource %s has an empty segment ('//')", quoteResource(resource))
		case ".", "..":
			return fmt.Errorf("the resource %s has a '%s' segment; resources are matched as written, never resolved", quoteResource(resource), seg)
		}
		if !found {
			break
		}
		rest = more
	}
	// validResource and this function disagree: a bug, but the resource
	// is refused all the same.
	return fmt.Errorf("the resource %s breaks the grammar", quoteResource(resource))
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

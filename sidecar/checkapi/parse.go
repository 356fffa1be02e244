package checkapi

import (
	"encoding/json"
	"math"
	"net/http"
	"unicode/utf8"

	"github.com/wardenauthz/warden/internal/httpkit"
)

// check is a check's body, read: the requirement, and whether each part
// was sent at all (an absent one is told from an empty one).
type check struct {
	action, resource       string
	hasAction, hasResource bool
	minRevision            int64
}

// readCheck reads a check's body. The common body, one object of
// "action", "resource" and "minRevision" with plain strings, is read in
// place with one allocation (parseCheck); anything else goes through
// encoding/json, so that every body is answered as encoding/json would.
func readCheck(body []byte) (check, error) {
	if c, ok := parseCheck(body); ok {
		return c, nil
	}
	var req checkRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return check{}, httpkit.Errorf(http.StatusBadRequest, "the request body is not valid JSON: %s", httpkit.JSONProblem(err))
	}
	return req.check(), nil
}

// check returns a request decoded by encoding/json as a check.
func (c checkRequest) check() check {
	out := check{minRevision: c.MinRevision}
	if c.Action != nil {
		out.action, out.hasAction = *c.Action, true
	}
	if c.Resource != nil {
		out.resource, out.hasResource = *c.Resource, true
	}
	return out
}

// parseCheck reads body when it is `{"action": "…", "resource": "…",
// "minRevision": N}` in any order, each key at most once and spelled
// exactly so, the strings holding no escape, control character or invalid
// UTF-8, N a whole number that fits int64, and nothing after the object
// but white space. It says false for anything else, which encoding/json
// then reads (it matches keys without case, ignores unknown ones, takes
// the last of a repeated one, unescapes, and names syntax errors). The
// strings share one allocation: the body copied once.
func parseCheck(body []byte) (check, bool) {
	var c check
	var text string // the body as a string, made at the first string value
	p := skipSpace(body, 0)
	if p >= len(body) || body[p] != '{' {
		return c, false
	}
	p = skipSpace(body, p+1)
	if p < len(body) && body[p] == '}' {
		return c, skipSpace(body, p+1) == len(body)
	}
	seenMin := false
	for {
		key, next, ok := plainString(body, p)
		if !ok {
			return c, false
		}
		p = skipSpace(body, next)
		if p >= len(body) || body[p] != ':' {
			return c, false
		}
		p = skipSpace(body, p+1)
		switch string(key) {
		case "action", "resource":
			start := p
			v, next, ok := plainString(body, p)
			if !ok {
				return c, false
			}
			if text == "" {
				text = string(body)
			}
			s := text[start+1 : start+1+len(v)]
			if key[0] == 'a' {
				if c.hasAction {
					return c, false
				}
				c.action, c.hasAction = s, true
			} else {
				if c.hasResource {
					return c, false
				}
				c.resource, c.hasResource = s, true
			}
			p = next
		case "minRevision":
			n, next, ok := wholeNumber(body, p)
			if !ok || seenMin {
				return c, false
			}
			c.minRevision, seenMin, p = n, true, next
		default:
			return c, false
		}
		p = skipSpace(body, p)
		if p >= len(body) {
			return c, false
		}
		switch body[p] {
		case ',':
			p = skipSpace(body, p+1)
		case '}':
			return c, skipSpace(body, p+1) == len(body)
		default:
			return c, false
		}
	}
}

// skipSpace returns the first position at or after p that is not JSON
// white space.
func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// plainString reads a string at p that needs no unescaping: its bytes
// between the quotes, and the position after it.
func plainString(b []byte, p int) ([]byte, int, bool) {
	if p >= len(b) || b[p] != '"' {
		return nil, p, false
	}
	for i := p + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s := b[p+1 : i]
			return s, i + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, p, false
		}
	}
	return nil, p, false
}

// wholeNumber reads an integer at p (an optional '-', digits, no leading
// zero, no fraction or exponent) that fits int64.
func wholeNumber(b []byte, p int) (int64, int, bool) {
	neg := p < len(b) && b[p] == '-'
	if neg {
		p++
	}
	start := p
	var n uint64
	for p < len(b) && b[p] >= '0' && b[p] <= '9' {
		if n > (math.MaxInt64)/10 {
			return 0, p, false
		}
		n = n*10 + uint64(b[p]-'0')
		p++
	}
	switch {
	case p == start, p-start > 1 && b[start] == '0', n > math.MaxInt64,
		p < len(b) && (b[p] == '.' || b[p] == 'e' || b[p] == 'E'):
		return 0, p, false
	}
	if neg {
		return -int64(n), p, true
	}
	return int64(n), p, true
}

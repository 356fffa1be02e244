// Package guest is the kit for writing Warden policy hooks in plain Go:
// register a function of the decision context with Handle, and build with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared. The package exports
// ABI version 1 (docs/hooks.md) for you.
//
// Input is a view of the decision context that reads the fields a hook asks
// for straight from the JSON, without decoding the rest, so a hook that
// looks at two fields pays for two fields.
package guest

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/wardenauthz/warden/policywasm/abi"
)

// Input is the decision context of one call, as JSON: request, claims,
// agent, grant and decision. It is valid only during the call.
type Input struct {
	raw []byte
}

// NewInput returns a view of a decision context, for tests of hooks.
func NewInput(raw []byte) *Input { return &Input{raw: raw} }

// Raw returns the value at path as JSON, and whether it exists.
func (in *Input) Raw(path ...string) ([]byte, bool) {
	b := in.raw
	for _, key := range path {
		var ok bool
		if b, ok = member(b, key); !ok {
			return nil, false
		}
	}
	return trim(b), true
}

// String returns the string at path, or "" when it is missing or not a
// string.
func (in *Input) String(path ...string) string {
	v, ok := in.Raw(path...)
	if !ok || len(v) < 2 || v[0] != '"' {
		return ""
	}
	s, _ := unquote(v)
	return s
}

// View returns the string at path without copying it: the string shares
// the input's memory, so it is valid only until the hook returns, and must
// not be kept. In a WebAssembly guest the first allocation of a call is
// costly (about 10 µs in Go), so a hook that reads with View and answers
// with constant strings allocates nothing. A string with escapes is
// decoded, and so copied.
func (in *Input) View(path ...string) string {
	v, ok := in.Raw(path...)
	if !ok || len(v) < 2 || v[0] != '"' {
		return ""
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' {
			s, _ := unquote(v)
			return s
		}
	}
	return unsafe.String(unsafe.SliceData(body), len(body))
}

// The members of the decision context, by name (abi.Field*). Each reads
// with View: the string is valid only until the hook returns.

// Action is the action the check asks for.
func (in *Input) Action() string { return in.View(abi.FieldRequest, abi.FieldAction) }

// Resource is the resource the check asks for, normalized.
func (in *Input) Resource() string { return in.View(abi.FieldRequest, abi.FieldResource) }

// SourceIP is the address the request came from, "" when unknown.
func (in *Input) SourceIP() string { return in.View(abi.FieldRequest, abi.FieldSourceIP) }

// Claim is the token's verified claim name when it is a string, else "".
func (in *Input) Claim(name string) string { return in.View(abi.FieldClaims, name) }

// AgentID is the agent the token resolved to, "" when none.
func (in *Input) AgentID() string { return in.View(abi.FieldAgent, abi.FieldID) }

// Now is the time of the check, in unix seconds.
func (in *Input) Now() int64 {
	n, _ := in.Number(abi.FieldNow)
	return int64(n)
}

// Allowed says whether the decision so far allows.
func (in *Input) Allowed() bool { return in.Bool(abi.FieldDecision, abi.FieldAllow) }

// Bool returns the boolean at path, false when it is missing.
func (in *Input) Bool(path ...string) bool {
	v, ok := in.Raw(path...)
	return ok && string(v) == "true"
}

// Number returns the number at path, and whether it is one.
func (in *Input) Number(path ...string) (float64, bool) {
	v, ok := in.Raw(path...)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
	return f, err == nil
}

// Strings returns the strings of the array at path (other items are left
// out), or a single string as a one-element list.
func (in *Input) Strings(path ...string) []string {
	v, ok := in.Raw(path...)
	if !ok || len(v) == 0 {
		return nil
	}
	if v[0] == '"' {
		s, _ := unquote(v)
		return []string{s}
	}
	if v[0] != '[' {
		return nil
	}
	var out []string
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != ']' {
		end := skipValue(v, i)
		if end < 0 {
			return out
		}
		if v[i] == '"' {
			if s, ok := unquote(v[i:end]); ok {
				out = append(out, s)
			}
		}
		i = skipSpace(v, end)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return out
}

// member returns the value of key in the object b (from its first byte).
func member(b []byte, key string) ([]byte, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		kend := skipValue(b, i)
		if kend < 0 {
			return nil, false
		}
		match, ok := keyIs(b[i:kend], key)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		vstart := skipSpace(b, i+1)
		vend := skipValue(b, vstart)
		if vend < 0 {
			return nil, false
		}
		if match {
			return b[vstart:vend], true
		}
		i = skipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil, false
}

// keyIs reports whether the quoted key q spells key, comparing in place
// unless q has escapes: reading a field allocates nothing.
func keyIs(q []byte, key string) (match, ok bool) {
	body := q[1 : len(q)-1]
	for _, c := range body {
		if c == '\\' {
			k, ok := unquote(q)
			return k == key, ok
		}
	}
	return string(body) == key, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i, or -1
// when there is none.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipValue(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

func trim(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\n' || b[j-1] == '\t' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}

// unquote decodes a JSON string literal.
func unquote(q []byte) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	q = q[1 : len(q)-1]
	plain := true
	for _, c := range q {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(q), true
	}
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(q) {
			return "", false
		}
		switch q[i] {
		case '"', '\\', '/':
			out = append(out, q[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(q, i+1)
			if !ok {
				return "", false
			}
			i += 4
			// A UTF-16 surrogate pair spells one rune in two escapes.
			if utf16.IsSurrogate(r) && i+6 < len(q) && q[i+1] == '\\' && q[i+2] == 'u' {
				if r2, ok := hex4(q, i+3); ok {
					if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
						r = c
						i += 6
					}
				}
			}
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

// hex4 reads the four hex digits of a \u escape at q[i:].
func hex4(q []byte, i int) (rune, bool) {
	if i+4 > len(q) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(q[i:i+4]), 16, 32)
	return rune(n), err == nil
}

// Output is a hook's answer. In restrict mode Allow false denies; in
// decide mode it is the decision. Headers are added to an allowed proxy
// answer.
type Output struct {
	Allow   bool
	Reason  string
	Headers map[string]string
}

// AppendJSON appends the answer as ABI version 1's JSON.
func (o Output) AppendJSON(b []byte) []byte {
	b = append(b, `{"`+abi.FieldAllow+`":`...)
	b = strconv.AppendBool(b, o.Allow)
	if o.Reason != "" {
		b = append(b, `,"`+abi.FieldReason+`":`...)
		b = abi.AppendString(b, o.Reason)
	}
	if len(o.Headers) > 0 {
		b = append(b, `,"`+abi.FieldHeaders+`":{`...)
		first := true
		for k, v := range o.Headers {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = abi.AppendString(b, k)
			b = append(b, ':')
			b = abi.AppendString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

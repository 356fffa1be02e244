// Package httpkit is what Warden's HTTP front doors share: errors that carry
// their status, handlers that return them and one function that renders
// them, JSON bodies in and out, and the bearer token of a request.
//
// Every error body is Fusebit's: {status, statusCode, message}.
package httpkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// MaxBodySize is the largest request body accepted unless a route says
// otherwise.
const MaxBodySize = 1 << 20

// Error is an error with the HTTP status it answers with. Its message is
// what the caller reads; Fields, when set, say which fields of the request
// body were wrong, each by its full path.
type Error struct {
	Status  int
	Message string
	Fields  []FieldError
}

// FieldError is one field of a request body that was wrong: its full path
// (identities[0].subject) and the message about it, which names the field
// by its last key, as Fusebit does ("subject" is required).
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// HandlerFunc is a handler that returns its failure rather than writing
// it: Render writes it, the same way for every route.
type HandlerFunc func(http.ResponseWriter, *http.Request) error

// ServeHTTP implements http.Handler.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		Render(w, err)
	}
}

// Render writes err as an error response: an *Error with its status and
// message, anything else as a 500 that names no detail (a handler that
// means to say more returns an *Error).
func Render(w http.ResponseWriter, err error) {
	var e *Error
	if errors.As(err, &e) {
		WriteJSON(w, e.Status, ErrorBody{Status: e.Status, StatusCode: e.Status, Message: e.Message, Fields: e.Fields})
		return
	}
	WriteError(w, http.StatusInternalServerError, "Warden failed to answer this request")
}

// ErrorBody is the body of every error response, as Fusebit's, with the
// fields of the request body that were wrong when there are any.
type ErrorBody struct {
	Status     int          `json:"status"`
	StatusCode int          `json:"statusCode"`
	Message    string       `json:"message"`
	Fields     []FieldError `json:"fields,omitempty"`
}

// WriteError writes an error response.
func WriteError(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, ErrorBody{Status: status, StatusCode: status, Message: message})
}

// jsonContentType is shared by every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// SetJSON sets a response's content type to JSON.
func SetJSON(w http.ResponseWriter) { w.Header()["Content-Type"] = jsonContentType }

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	SetJSON(w)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ReadBody reads a request body of at most limit bytes: a larger one is a
// 413 *Error, a failed read a 400.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err, limit)
	}
	return body, nil
}

// bodyBufs hold bodies while DecodeJSON parses them: the check path keeps
// no garbage it can avoid, and a collection is what a p99 pays for.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf bounds the buffers kept: a rare large body does not stay.
const maxPooledBuf = 64 << 10

// DecodeJSON reads a JSON body of at most limit bytes into v: a larger
// one is a 413 *Error, a failed read or bad JSON a 400 that names the
// problem without quoting the body.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return WithBody(w, r, limit, func(body []byte) error {
		if err := json.Unmarshal(body, v); err != nil {
			return Errorf(http.StatusBadRequest, "the request body is not valid JSON: %s", JSONProblem(err))
		}
		return nil
	})
}

// WithBody reads a body of at most limit bytes into a pooled buffer and
// gives it to use, which must not keep it: a larger body is a 413 *Error
// (and the connection is closed after the answer, as
// http.MaxBytesReader would have it), a failed read a 400.
func WithBody(w http.ResponseWriter, r *http.Request, limit int64, use func(body []byte) error) error {
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			bodyBufs.Put(buf)
		}
	}()
	if err := readLimited(r.Body, buf, limit); err != nil {
		if err.Status == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		return err
	}
	return use(buf.Bytes())
}

// readLimited reads body into buf, at most limit bytes. It reads into the
// buffer's spare room itself: a wrapping reader would cost an allocation
// per request.
func readLimited(body io.Reader, buf *bytes.Buffer, limit int64) *Error {
	if body == nil {
		return nil
	}
	for {
		if int64(buf.Len()) > limit {
			return Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", limit)
		}
		buf.Grow(512)
		room := buf.AvailableBuffer()
		n, err := body.Read(room[:min(int64(cap(room)), limit+1-int64(buf.Len()))])
		buf.Write(room[:n])
		switch {
		case err == io.EOF:
			if int64(buf.Len()) > limit {
				return Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", limit)
			}
			return nil
		case err != nil:
			return Errorf(http.StatusBadRequest, "reading the request body: %s", err)
		}
	}
}

func bodyError(err error, limit int64) *Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return Errorf(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", limit)
	}
	return Errorf(http.StatusBadRequest, "reading the request body: %s", err)
}

// JSONProblem describes a JSON decoding error without quoting the body.
func JSONProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf(`"%s" must be a %s`, typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return fmt.Sprintf("expected a %s", jsonKind(typ.Type.Kind().String()))
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "uint64", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "object"
}

// BearerToken returns the token of an Authorization header with the Bearer
// scheme (case-insensitive), or "".
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Bearer returns a request's bearer token, or "" when it has none, or more
// than one Authorization header: a proxy in front may read another one
// than Warden, so two tokens are no token.
func Bearer(r *http.Request) string {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return ""
	}
	return BearerToken(values[0])
}

// Source is the address a request came from, without its port.
func Source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Proxies are the addresses whose X-Forwarded-For and X-Real-IP headers
// are believed (--trusted-proxies). The zero value trusts none.
type Proxies []netip.Prefix

// ParseProxies reads a list of CIDRs or single addresses.
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for _, s := range list {
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or a CIDR", s)
			}
			p = append(p, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or a CIDR", s)
		}
		p = append(p, pfx.Masked())
	}
	return p, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, pfx := range p {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the address a request came from, without its port. When the
// connection comes from a trusted proxy, it is the last address of
// X-Forwarded-For that is not a trusted proxy (the one a trusted proxy
// saw), else X-Real-IP; otherwise the connection's own address, whatever
// the headers say.
func (p Proxies) Client(r *http.Request) string {
	peer := Source(r)
	if len(p) == 0 {
		return peer
	}
	if a, err := netip.ParseAddr(peer); err != nil || !p.trusts(a) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a hop that is no address: believe nothing before it
			}
			if !p.trusts(h) {
				return h.Unmap().String()
			}
		}
	}
	if real, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return real.Unmap().String()
	}
	return peer
}

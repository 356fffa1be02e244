package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/state"
)

// MaxBodySize is the largest request body accepted.
const MaxBodySize = 1 << 20

// MaxBatch is the largest number of checks in one batch.
const MaxBatch = 100

// Register adds the check API's routes to mux.
func (e *Engine) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/check", e.serveCheck)
	mux.HandleFunc("POST /v1/check/batch", e.serveBatch)
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

// bearerOf returns a request's bearer token, or "" when it has none, or
// more than one Authorization header: a proxy in front may read another
// one than Warden, so two tokens are no token.
func bearerOf(r *http.Request) string {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return ""
	}
	return BearerToken(values[0])
}

type checkRequest struct {
	Action      *string `json:"action"`
	Resource    *string `json:"resource"`
	MinRevision int64   `json:"minRevision"`
}

type batchRequest struct {
	Checks      []checkRequest `json:"checks"`
	MinRevision int64          `json:"minRevision"`
}

type batchResponse struct {
	Results []model.Decision `json:"results"`
}

func (e *Engine) serveCheck(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if !decodeBody(w, r, &req) {
		return
	}
	action, resource, err := req.requirement("")
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	snap, ok := e.snapshotAt(w, r.Context(), req.MinRevision)
	if !ok {
		return
	}
	call := e.startCall(w, r)
	d, class := e.decide(r.Context(), snap, bearerOf(r), action, resource, sourceOf(r))
	e.logDecision(r.Context(), call, -1, action, resource, d, class)
	writeDecision(w, d)
}

func (e *Engine) serveBatch(w http.ResponseWriter, r *http.Request) {
	var req batchRequest
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case len(req.Checks) == 0:
		WriteError(w, http.StatusBadRequest, `"checks" must contain at least 1 items`)
		return
	case len(req.Checks) > MaxBatch:
		WriteError(w, http.StatusBadRequest, fmt.Sprintf(`"checks" must contain at most %d items`, MaxBatch))
		return
	}
	for i, c := range req.Checks {
		if _, _, err := c.requirement(fmt.Sprintf("checks[%d].", i)); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	snap, ok := e.snapshotAt(w, r.Context(), req.MinRevision)
	if !ok {
		return
	}
	call := e.startCall(w, r)
	token, source := bearerOf(r), sourceOf(r)
	// The batch as a whole is bounded: its hooks see the deadline, and a
	// batch that runs past it is refused whole, never half decided.
	ctx, cancel := context.WithTimeout(r.Context(), e.cfg.BatchTimeout)
	defer cancel()
	out := batchResponse{Results: make([]model.Decision, len(req.Checks))}
	classes := make([]ReasonClass, len(req.Checks))
	for i, c := range req.Checks {
		if ctx.Err() != nil {
			WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("the batch took longer than %s (--batch-timeout) and was stopped after %d of its %d checks; send fewer checks at once",
				e.cfg.BatchTimeout, i, len(req.Checks)))
			return
		}
		out.Results[i], classes[i] = e.decide(ctx, snap, token, *c.Action, *c.Resource, source)
	}
	if ctx.Err() != nil {
		WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("the batch took longer than %s (--batch-timeout); send fewer checks at once", e.cfg.BatchTimeout))
		return
	}
	for i, c := range req.Checks {
		e.logDecision(r.Context(), call, i, *c.Action, *c.Resource, out.Results[i], classes[i])
	}
	WriteJSON(w, http.StatusOK, out)
}

// requirement returns the checked action and resource, or why they break
// the grammar: a resource with a ".." segment is refused, never matched
// literally.
func (c checkRequest) requirement(prefix string) (action, resource string, err error) {
	switch {
	case c.Action == nil:
		return "", "", fmt.Errorf(`"%saction" is required`, prefix)
	case *c.Action == "":
		return "", "", fmt.Errorf(`"%saction" is not allowed to be empty`, prefix)
	case c.Resource == nil:
		return "", "", fmt.Errorf(`"%sresource" is required`, prefix)
	case *c.Resource == "":
		return "", "", fmt.Errorf(`"%sresource" is not allowed to be empty`, prefix)
	}
	if err := model.ValidateAction(*c.Action); err != nil {
		return "", "", fmt.Errorf(`"%saction": %w`, prefix, err)
	}
	if err := model.ValidateResource(*c.Resource); err != nil {
		return "", "", fmt.Errorf(`"%sresource": %w`, prefix, err)
	}
	return *c.Action, *c.Resource, nil
}

// snapshotAt returns the current snapshot once it is at minRevision or
// later, waiting at most MinRevisionWait; otherwise it answers 503.
func (e *Engine) snapshotAt(w http.ResponseWriter, ctx context.Context, minRevision int64) (*state.Snapshot, bool) {
	switch {
	case minRevision < 0:
		WriteError(w, http.StatusBadRequest, `"minRevision" must be a positive number`)
		return nil, false
	case minRevision == 0:
		return e.store.Snapshot(), true
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.MinRevisionWait)
	defer cancel()
	snap, err := e.WaitRevision(ctx, minRevision)
	if err != nil {
		msg := fmt.Sprintf("revision %d was not reached within %s; this node is at revision %d", minRevision, e.cfg.MinRevisionWait, e.store.Revision())
		if errors.Is(err, ErrHooksBehind) {
			msg = fmt.Sprintf("the policy hooks of revision %d were not attached within %s (this node's state is at revision %d); they may still be compiling",
				minRevision, e.cfg.MinRevisionWait, e.store.Revision())
		}
		WriteError(w, http.StatusServiceUnavailable, msg)
		return nil, false
	}
	return snap, true
}

// bodyBufs hold check bodies while they are parsed: the check path keeps
// no garbage it can avoid, and a collection is what a p99 pays for.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf bounds the buffers kept: a rare large body does not stay.
const maxPooledBuf = 64 << 10

// decodeBody reads a JSON body of at most MaxBodySize into v, answering 400
// or 413 itself when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			bodyBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodySize)); err != nil {
		herr := bodyError(err, MaxBodySize)
		WriteError(w, herr.Status, herr.Message)
		return false
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		WriteError(w, http.StatusBadRequest, "the request body is not valid JSON: "+JSONProblem(err))
		return false
	}
	return true
}

// HTTPError is an error with the HTTP status it answers with.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// ReadBody reads a request body of at most MaxBodySize: a larger one is a
// 413 HTTPError, a failed read a 400.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *HTTPError) {
	return ReadBodyLimit(w, r, MaxBodySize)
}

// ReadBodyLimit is ReadBody with a limit of its own, for the routes that
// take more than MaxBodySize.
func ReadBodyLimit(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *HTTPError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err, limit)
	}
	return body, nil
}

// bodyError is the answer to a body that could not be read: 413 past the
// limit, else 400.
func bodyError(err error, limit int64) *HTTPError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &HTTPError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit)}
	}
	return &HTTPError{http.StatusBadRequest, "reading the request body: " + err.Error()}
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

// sourceOf is the address a request came from, without its port.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ErrorBody is the body of every error response, as Fusebit's.
type ErrorBody struct {
	Status     int    `json:"status"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// WriteError writes an error response.
func WriteError(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, ErrorBody{Status: status, StatusCode: status, Message: message})
}

// jsonContentType is shared by every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decisionWriter encodes a decision into a buffer it keeps, with an
// encoder it keeps: pooled, a check's answer costs no allocation.
type decisionWriter struct {
	d   model.Decision
	buf bytes.Buffer
	enc *json.Encoder
}

var decisionWriters = sync.Pool{New: func() any {
	dw := &decisionWriter{}
	dw.enc = json.NewEncoder(&dw.buf)
	return dw
}}

// writeDecision answers 200 with d, as WriteJSON would.
func writeDecision(w http.ResponseWriter, d model.Decision) {
	dw := decisionWriters.Get().(*decisionWriter)
	dw.d = d
	dw.buf.Reset()
	err := dw.enc.Encode(&dw.d)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	if err == nil {
		_, _ = w.Write(dw.buf.Bytes())
	}
	dw.d = model.Decision{}
	decisionWriters.Put(dw)
}

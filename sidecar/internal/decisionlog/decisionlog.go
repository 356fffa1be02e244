// Package decisionlog writes the front doors' decisions as JSON records,
// one per decision that passes the filter and the sample: what was asked,
// the answer, the agent and the reason; never the token, its claims or
// keys.
package decisionlog

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/wardenauthz/warden/sidecar"
)

// Modes.
const (
	Off  = "off"
	Deny = "deny"
	All  = "all"
)

// CallIDHeader carries a request's call id: the caller's X-Request-Id when
// it sent a usable one, else one Warden made. It is set when the log is
// on, so that a caller can find its decisions there.
const CallIDHeader = "Warden-Call-Id"

// Log is a decision log; a nil Log logs nothing.
type Log struct {
	denyOnly bool
	sample   float64 // the share of passing decisions logged, in (0, 1]
	log      *slog.Logger
}

// New returns a log of mode (Off, Deny or All) keeping a sample share of
// the decisions it selects; nil when mode is Off or "".
func New(mode string, sample float64, log *slog.Logger) *Log {
	if mode == "" || mode == Off {
		return nil
	}
	if sample <= 0 {
		sample = 1
	}
	return &Log{denyOnly: mode == Deny, sample: sample, log: log}
}

// wants reports whether to log a decision of class c.
func (l *Log) wants(c sidecar.ReasonClass) bool {
	if l.denyOnly && c.Allows() {
		return false
	}
	return l.sample >= 1 || rand.Float64() < l.sample
}

// Call is one request, for the log.
type Call struct {
	id     string
	source string
	start  time.Time
}

// Start gives a request its call id and sends it back in w, when the log
// is on; otherwise it returns nil. source is the client's address.
func (l *Log) Start(w http.ResponseWriter, r *http.Request, source string) *Call {
	if l == nil {
		return nil
	}
	c := &Call{id: callID(r.Header.Get("X-Request-Id")), source: source, start: time.Now()}
	w.Header().Set(CallIDHeader, c.id)
	return c
}

// Record writes a decision when the call is logged and the decision passes
// the filter and the sample, with the front door's attributes of what was
// asked.
func (l *Log) Record(ctx context.Context, c *Call, d sidecar.Decision, asked ...slog.Attr) {
	if c == nil || !l.wants(d.Class) {
		return
	}
	attrs := make([]slog.Attr, 0, 12+len(asked))
	attrs = append(attrs,
		slog.String("call_id", c.id),
		slog.Bool("allow", d.Allow),
		slog.Int("status", d.Status),
		slog.String("reason_class", d.Class.String()),
		slog.String("reason", d.Reason),
	)
	attrs = append(attrs, asked...)
	attrs = append(attrs, slog.Int64("revision", d.Revision))
	if d.Agent.ID != "" {
		attrs = append(attrs, slog.String("agent_id", d.Agent.ID), slog.String("agent_type", string(d.Agent.Type)))
	}
	if d.Grant.Action != "" {
		attrs = append(attrs, slog.String("grant_action", d.Grant.Action), slog.String("grant_resource", d.Grant.Resource))
	}
	if c.source != "" {
		attrs = append(attrs, slog.String("source", c.source))
	}
	attrs = append(attrs, slog.Float64("elapsed_us", float64(time.Since(c.start).Nanoseconds())/1e3))
	l.log.LogAttrs(ctx, slog.LevelInfo, "decision", attrs...)
}

// maxCallID bounds a caller's request id; a longer or odder one is
// replaced, so that the log's field stays a plain token.
const maxCallID = 128

// callID returns the caller's request id when usable, else a new random
// one.
func callID(requestID string) string {
	if requestID != "" && len(requestID) <= maxCallID && plainID(requestID) {
		return requestID
	}
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

func plainID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

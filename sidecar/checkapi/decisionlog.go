package checkapi

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/wardenauthz/warden/sidecar"
)

// Decision log modes.
const (
	DecisionLogOff  = "off"
	DecisionLogDeny = "deny"
	DecisionLogAll  = "all"
)

// CallIDHeader carries a check's call id: the caller's X-Request-Id when it
// sent a usable one, else one Warden made. It is set when the decision log
// is on, so that a caller can find its decisions there.
const CallIDHeader = "Warden-Call-Id"

// decisionLog writes one JSON record per decision of the check API that
// passes its filter and its sample. Records carry what was asked, the
// answer, the agent and the reason: never the token, its claims or keys.
type decisionLog struct {
	denyOnly bool
	sample   float64 // the share of passing decisions logged, in (0, 1]
	log      *slog.Logger
}

func newDecisionLog(cfg Config, log *slog.Logger) *decisionLog {
	if cfg.DecisionLog == "" || cfg.DecisionLog == DecisionLogOff {
		return nil
	}
	return &decisionLog{denyOnly: cfg.DecisionLog == DecisionLogDeny, sample: cfg.DecisionLogSample, log: log}
}

// wants reports whether to log a decision of class c.
func (l *decisionLog) wants(c sidecar.ReasonClass) bool {
	if l.denyOnly && c.Allows() {
		return false
	}
	return l.sample >= 1 || rand.Float64() < l.sample
}

// loggedCall is one check request, for the log.
type loggedCall struct {
	id     string
	source string
	start  time.Time
}

// startCall gives a request its call id and sends it back, when the log is
// on; otherwise it returns nil.
func (a *API) startCall(w http.ResponseWriter, r *http.Request) *loggedCall {
	if a.dlog == nil {
		return nil
	}
	c := &loggedCall{id: callID(r.Header.Get("X-Request-Id")), source: a.cfg.Proxies.Client(r), start: time.Now()}
	w.Header().Set(CallIDHeader, c.id)
	return c
}

// logDecision writes a decision when the call is logged and the decision
// passes the filter and the sample. index is its place in a batch, -1
// for a single check.
func (a *API) logDecision(ctx context.Context, c *loggedCall, index int, action, resource string, d sidecar.Decision) {
	if c == nil || !a.dlog.wants(d.Class) {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("call_id", c.id),
		slog.Bool("allow", d.Allow),
		slog.Int("status", d.Status),
		slog.String("reason_class", d.Class.String()),
		slog.String("reason", d.Reason),
		slog.String("action", action),
		slog.String("resource", resource),
		slog.String("account", a.eng.AccountOf(resource)),
		slog.Int64("revision", d.Revision),
	)
	if index >= 0 {
		attrs = append(attrs, slog.Int("batch_index", index))
	}
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
	a.dlog.log.LogAttrs(ctx, slog.LevelInfo, "decision", attrs...)
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

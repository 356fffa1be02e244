package checkapi

import (
	"context"
	"log/slog"

	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/internal/decisionlog"
)

// Decision log modes.
const (
	DecisionLogOff  = decisionlog.Off
	DecisionLogDeny = decisionlog.Deny
	DecisionLogAll  = decisionlog.All
)

// CallIDHeader carries a check's call id (decisionlog.CallIDHeader).
const CallIDHeader = decisionlog.CallIDHeader

// logDecision writes a check's decision; index is its place in a batch,
// -1 for a single check.
func (a *API) logDecision(ctx context.Context, c *decisionlog.Call, index int, action, resource string, d sidecar.Decision) {
	if c == nil {
		return
	}
	asked := []slog.Attr{slog.String("action", action), slog.String("resource", resource), slog.String("account", a.eng.AccountOf(resource))}
	if index >= 0 {
		asked = append(asked, slog.Int("batch_index", index))
	}
	a.dlog.Record(ctx, c, d, asked...)
}

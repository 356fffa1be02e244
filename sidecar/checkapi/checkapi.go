// Package checkapi is the check API, one of the engine's front doors:
// POST /v1/check and /v1/check/batch. It turns a request into
// requirements and a decision into a response; the engine decides.
package checkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/sidecar/internal/decisionlog"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wardenauthz/warden/internal/httpkit"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
)

// MaxBatch is the largest number of checks in one batch.
const MaxBatch = 100

// Config configures the check API. The zero value of each field is its
// default.
type Config struct {
	// MinRevisionWait bounds how long a check waits for minRevision.
	// Default 1s.
	MinRevisionWait time.Duration `yaml:"min-revision-wait"`
	// BatchTimeout bounds a batch of checks as a whole: slow hooks times
	// a hundred checks must not hold a request for seconds. Default 2s.
	BatchTimeout time.Duration `yaml:"batch-timeout"`
	// DecisionLog selects the decisions to log: DecisionLogOff (the
	// default, "" too), DecisionLogDeny or DecisionLogAll.
	DecisionLog string `yaml:"decision-log"`
	// DecisionLogSample is the share of selected decisions logged, in
	// (0, 1]. Default 1.
	DecisionLogSample float64 `yaml:"decision-log-sample"`
	// Proxies are believed about the client's address (--trusted-proxies).
	Proxies httpkit.Proxies `yaml:"-"`
}

func (c *Config) setDefaults() {
	if c.MinRevisionWait == 0 {
		c.MinRevisionWait = time.Second
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 2 * time.Second
	}
	if c.DecisionLog == "" {
		c.DecisionLog = DecisionLogOff
	}
	if c.DecisionLogSample == 0 {
		c.DecisionLogSample = 1
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.BatchTimeout < 0 {
		errs = append(errs, fmt.Errorf("batch-timeout %s must not be negative", c.BatchTimeout))
	}
	if c.MinRevisionWait < 0 {
		errs = append(errs, fmt.Errorf("min-revision-wait %s must not be negative", c.MinRevisionWait))
	}
	switch c.DecisionLog {
	case "", DecisionLogOff, DecisionLogDeny, DecisionLogAll:
	default:
		errs = append(errs, fmt.Errorf("decision-log %q must be one of %s, %s, %s", c.DecisionLog, DecisionLogOff, DecisionLogDeny, DecisionLogAll))
	}
	if !(c.DecisionLogSample >= 0 && c.DecisionLogSample <= 1) {
		errs = append(errs, fmt.Errorf("decision-log-sample %g must be a share from 0 (exclusive) to 1", c.DecisionLogSample))
	}
	return errors.Join(errs...)
}

// API serves the check API over an engine.
type API struct {
	eng *sidecar.Engine
	cfg Config
	// dlog is nil when decisions are not logged.
	dlog *decisionlog.Log
}

// New returns the check API over eng. Its decision log writes to log
// (slog.Default() when nil).
func New(eng *sidecar.Engine, cfg Config, log *slog.Logger) (*API, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("check API configuration: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &API{eng: eng, cfg: cfg, dlog: decisionlog.New(cfg.DecisionLog, cfg.DecisionLogSample, log.With("component", "decision"))}, nil
}

// RegisterRefusal answers the check API's routes with 404 and a message
// saying that this node serves the admin API only: what a --role admin
// node mounts.
func RegisterRefusal(mux *http.ServeMux) {
	refuse := func(w http.ResponseWriter, _ *http.Request) {
		httpkit.WriteError(w, http.StatusNotFound, "This Warden node serves the admin API only (--role admin); send checks to a node running with --role sidecar or all")
	}
	mux.HandleFunc("/v1/check", refuse)
	mux.HandleFunc("/v1/check/", refuse)
}

// Register adds the check API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/check", httpkit.HandlerFunc(a.serveCheck))
	mux.Handle("POST /v1/check/batch", httpkit.HandlerFunc(a.serveBatch))
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

func (a *API) serveCheck(w http.ResponseWriter, r *http.Request) error {
	var req check
	err := httpkit.WithBody(w, r, httpkit.MaxBodySize, func(body []byte) error {
		var err error
		req, err = readCheck(body)
		return err
	})
	if err != nil {
		return err
	}
	action, resource, err := req.requirement("")
	if err != nil {
		return err
	}
	snap, err := a.snapshotAt(r.Context(), req.minRevision)
	if err != nil {
		return err
	}
	info := sidecar.RequestInfo{Source: a.cfg.Proxies.Client(r)}
	call := a.dlog.Start(w, r, info.Source)
	reqs := [1]model.Permission{{Action: action, Resource: resource}}
	d := a.eng.Decide(r.Context(), snap, httpkit.Bearer(r), reqs[:], info)
	a.logDecision(r.Context(), call, -1, action, resource, d)
	writeDecision(w, d.Decision)
	return nil
}

func (a *API) serveBatch(w http.ResponseWriter, r *http.Request) error {
	var req batchRequest
	if err := httpkit.DecodeJSON(w, r, httpkit.MaxBodySize, &req); err != nil {
		return err
	}
	switch {
	case len(req.Checks) == 0:
		return httpkit.Errorf(http.StatusBadRequest, `"checks" must contain at least 1 items`)
	case len(req.Checks) > MaxBatch:
		return httpkit.Errorf(http.StatusBadRequest, `"checks" must contain at most %d items`, MaxBatch)
	}
	for i, c := range req.Checks {
		if _, _, err := c.check().requirement(fmt.Sprintf("checks[%d].", i)); err != nil {
			return err
		}
	}
	snap, err := a.snapshotAt(r.Context(), req.MinRevision)
	if err != nil {
		return err
	}
	token, info := httpkit.Bearer(r), sidecar.RequestInfo{Source: a.cfg.Proxies.Client(r)}
	call := a.dlog.Start(w, r, info.Source)
	// The batch as a whole is bounded: its hooks see the deadline, and a
	// batch that runs past it is refused whole, never half decided.
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.BatchTimeout)
	defer cancel()
	out := batchResponse{Results: make([]model.Decision, len(req.Checks))}
	decisions := make([]sidecar.Decision, len(req.Checks))
	for i, c := range req.Checks {
		if ctx.Err() != nil {
			return httpkit.Errorf(http.StatusServiceUnavailable, "the batch took longer than %s (--batch-timeout) and was stopped after %d of its %d checks; send fewer checks at once",
				a.cfg.BatchTimeout, i, len(req.Checks))
		}
		reqs := [1]model.Permission{{Action: *c.Action, Resource: *c.Resource}}
		decisions[i] = a.eng.Decide(ctx, snap, token, reqs[:], info)
		out.Results[i] = decisions[i].Decision
	}
	if ctx.Err() != nil {
		return httpkit.Errorf(http.StatusServiceUnavailable, "the batch took longer than %s (--batch-timeout); send fewer checks at once", a.cfg.BatchTimeout)
	}
	for i, c := range req.Checks {
		a.logDecision(r.Context(), call, i, *c.Action, *c.Resource, decisions[i])
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// requirement returns the checked action and resource, or why they break
// the grammar (a 400): a resource with a ".." segment is refused, never
// matched literally.
func (c check) requirement(prefix string) (action, resource string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", httpkit.Errorf(http.StatusBadRequest, format, args...)
	}
	switch {
	case !c.hasAction:
		return bad(`"%saction" is required`, prefix)
	case c.action == "":
		return bad(`"%saction" is not allowed to be empty`, prefix)
	case !c.hasResource:
		return bad(`"%sresource" is required`, prefix)
	case c.resource == "":
		return bad(`"%sresource" is not allowed to be empty`, prefix)
	}
	if err := model.ValidateAction(c.action); err != nil {
		return bad(`"%saction": %s`, prefix, err)
	}
	if err := model.ValidateResource(c.resource); err != nil {
		return bad(`"%sresource": %s`, prefix, err)
	}
	return c.action, c.resource, nil
}

// snapshotAt returns the current snapshot once it is at minRevision or
// later, waiting at most MinRevisionWait; otherwise a 503 that says what
// is late.
func (a *API) snapshotAt(ctx context.Context, minRevision int64) (*state.Snapshot, error) {
	switch {
	case minRevision < 0:
		return nil, httpkit.Errorf(http.StatusBadRequest, `"minRevision" must be a positive number`)
	case minRevision == 0:
		return a.eng.Snapshot(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.MinRevisionWait)
	defer cancel()
	snap, err := a.eng.WaitRevision(ctx, minRevision)
	switch {
	case err == nil:
		return snap, nil
	case errors.Is(err, sidecar.ErrHooksBehind):
		return nil, httpkit.Errorf(http.StatusServiceUnavailable, "the policy hooks of revision %d were not attached within %s (this node's state is at revision %d); they may still be compiling",
			minRevision, a.cfg.MinRevisionWait, a.eng.State().Revision())
	}
	return nil, httpkit.Errorf(http.StatusServiceUnavailable, "revision %d was not reached within %s; this node is at revision %d", minRevision, a.cfg.MinRevisionWait, a.eng.State().Revision())
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
	httpkit.SetJSON(w)
	w.WriteHeader(http.StatusOK)
	if err == nil {
		_, _ = w.Write(dw.buf.Bytes())
	}
	dw.d = model.Decision{}
	decisionWriters.Put(dw)
}

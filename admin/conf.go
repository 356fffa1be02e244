package admin

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net/url"
	"time"
)

// Config configures the admin API. The zero value of each field but
// BaseURL is its default.
type Config struct {
	// BaseURL is this deployment's URL: the iss and aud of init tokens and
	// the host part of the issuer ids they create.
	BaseURL string `yaml:"base-url"`
	// InitTokenTTL is how long an init token is valid. Default 8h.
	InitTokenTTL time.Duration `yaml:"-"`
	// StoreTimeout bounds the store calls of one request, so that a request
	// made while etcd is unreachable answers 503 instead of hanging.
	// Default 10s.
	StoreTimeout time.Duration `yaml:"-"`
	// WriteWait bounds how long a write waits for this node's replica to
	// apply it before answering. Default 5s.
	WriteWait time.Duration `yaml:"-"`
	// AuditRetention is how long the audit entries of admin API calls are
	// kept (--audit-retention). Default DefaultAuditRetention; negative:
	// no audit log.
	AuditRetention time.Duration `yaml:"audit-retention"`
}

func (c *Config) setDefaults() {
	if c.InitTokenTTL == 0 {
		c.InitTokenTTL = 8 * time.Hour
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.WriteWait == 0 {
		c.WriteWait = 5 * time.Second
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		errs = append(errs, errors.New("base-url: a base URL is required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("base-url %q: %w", c.BaseURL, err))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("base-url %q must be an http:// or https:// URL with a host", c.BaseURL))
	}
	if c.InitTokenTTL < 0 || c.WriteWait < 0 || c.StoreTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	return errors.Join(errs...)
}

// Deps are what the admin API takes from its surroundings. The zero value
// of each field is its default.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// CheckModule says whether a hook module would load (compiles it and
	// asks its ABI version). Without it, modules are stored unchecked.
	CheckModule func(ctx context.Context, name string, wasm []byte) error
	// AwaitHooks waits until this node has attached the hooks of a store
	// revision. Without it, hook writes answer once they are committed.
	AwaitHooks func(ctx context.Context, rev int64) error
	// HookState, when set, says whether this node has attached the hook
	// acc/name with the module sha256 ("attached"), found it broken
	// ("broken", with why) or not attached it yet ("pending"); hook
	// records then carry it as status. Admin-only nodes attach no hooks.
	HookState func(acc, name, sha256 string) (state, reason string)
	// AwaitRoutes, when set, waits until this node's route table
	// (--route-table) has caught up with a store revision, so that a
	// request to its front doors right after a table write sees it.
	AwaitRoutes func(ctx context.Context, rev int64) error
	// Registerer, when set, receives the admin API's request counts and
	// durations by route, method and status code.
	Registerer prometheus.Registerer
}

package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/sdk/model"
)

// DefaultPermissionsClaim is the claim carrying inline permissions.
const DefaultPermissionsClaim = model.PermissionsClaim

// MaxTokenSize is the largest bearer token parsed; larger ones are refused.
const MaxTokenSize = 16 << 10

// Config is the engine's configuration. The zero value of each field is its
// default, except Audiences, which must not be empty.
type Config struct {
	// DefaultAccount serves checks whose resource names no account.
	DefaultAccount string `yaml:"account"`
	// Audiences are the accepted aud values.
	Audiences []string `yaml:"audience"`
	// Leeway is the clock skew allowed on exp and nbf. Default 0.
	Leeway time.Duration `yaml:"leeway"`
	// AllowTokensWithoutExp accepts tokens that carry no exp.
	AllowTokensWithoutExp bool `yaml:"allow-tokens-without-exp"`
	// PermissionsClaim names the inline-permissions claim. Default
	// DefaultPermissionsClaim.
	PermissionsClaim string `yaml:"permissions-claim"`
	// AllowInsecureKeyURLs accepts http:// key URLs (loopback tests only).
	AllowInsecureKeyURLs bool `yaml:"allow-insecure-key-urls"`
	// MaxKeyStaleness is how long fetched keys outlive failed refreshes.
	// Default 24h.
	MaxKeyStaleness time.Duration `yaml:"max-key-staleness"`
	// TokenCacheSize bounds the verified-token cache. Default 100000; -1
	// disables the cache.
	TokenCacheSize int `yaml:"token-cache-size"`
	// TimingSample: one check in TimingSample is timed for
	// warden_check_duration_seconds; every check is counted. Default
	// DefaultTimingSample; 1 times every check, at about 45 ns each.
	TimingSample int `yaml:"check-timing-sample"`
}

func (c *Config) setDefaults() {
	if c.PermissionsClaim == "" {
		c.PermissionsClaim = DefaultPermissionsClaim
	}
	if c.MaxKeyStaleness == 0 {
		c.MaxKeyStaleness = 24 * time.Hour
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = 100_000
	}
	if c.TimingSample == 0 {
		c.TimingSample = DefaultTimingSample
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.DefaultAccount != "" && !model.ValidID(model.AccountPrefix, c.DefaultAccount) {
		errs = append(errs, fmt.Errorf("account %q does not match %s", c.DefaultAccount, model.IDPattern(model.AccountPrefix)))
	}
	if len(c.Audiences) == 0 {
		errs = append(errs, errors.New("audience: at least one accepted audience is required"))
	}
	for _, a := range c.Audiences {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, errors.New("audience: an audience must not be empty"))
		}
	}
	if c.Leeway < 0 {
		errs = append(errs, fmt.Errorf("leeway %s must not be negative", c.Leeway))
	}
	if c.MaxKeyStaleness < 0 {
		errs = append(errs, fmt.Errorf("max-key-staleness %s must not be negative", c.MaxKeyStaleness))
	}
	if c.TokenCacheSize < -1 {
		errs = append(errs, fmt.Errorf("token-cache-size %d must be a number of tokens, or -1 for no cache", c.TokenCacheSize))
	}
	if c.TimingSample < 0 {
		errs = append(errs, fmt.Errorf("check-timing-sample %d must be positive", c.TimingSample))
	}
	return errors.Join(errs...)
}

// Deps are what the engine takes from its surroundings. The zero value of
// each field is its default.
type Deps struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// HTTPClient fetches issuer keys; it defaults to a client with a 5s
	// timeout.
	HTTPClient *http.Client
	// Registerer, when set, receives the engine's metrics: check
	// durations, decisions, the token cache, key fetches and hook
	// durations. Without one the engine records nothing.
	Registerer prometheus.Registerer
}

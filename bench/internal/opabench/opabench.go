// Package opabench runs Warden's check as an Open Policy Agent policy: the
// Rego policy (policy.rego), the data it reads, exported from the same model
// Warden is given, and OPA's prepared query over both. Benchmarks use it to
// compare the two doing the same job.
package opabench

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/cache"
)

// Policy is the Rego source of Warden's check.
//
//go:embed policy.rego
var Policy string

// The policy's queries, and the path of its decision in OPA's HTTP data API.
const (
	QueryAllow    = "data.warden.allow"
	QueryDecision = "data.warden.decision"
	HTTPAllowPath = "/v1/data/warden/allow"
)

// JWTCacheEntries bounds OPA's io_jwt cache, as Warden's token cache is
// bounded by default.
const JWTCacheEntries = 100_000

// CachingConfig is the "caching" section of OPA's configuration that turns
// on the inter-query value cache of io.jwt.decode_verify (off by default in
// OPA): a token verified once against a key is not verified again. Its
// claims (exp, nbf, aud) are still checked on every query, as Warden checks
// them on every token-cache hit.
func CachingConfig() map[string]any {
	return map[string]any{
		"inter_query_builtin_value_cache": map[string]any{
			"named": map[string]any{
				"io_jwt": map[string]any{"max_num_entries": JWTCacheEntries},
			},
		},
	}
}

// NewJWTCache returns an inter-query value cache with io_jwt on, for
// prepared queries (rego.EvalInterQueryBuiltinValueCache).
func NewJWTCache(ctx context.Context) (cache.InterQueryValueCache, error) {
	raw := fmt.Appendf(nil, `{"inter_query_builtin_value_cache":{"named":{"io_jwt":{"max_num_entries":%d}}}}`, JWTCacheEntries)
	cfg, err := cache.ParseCachingConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("opabench: caching config: %w", err)
	}
	return cache.NewInterQueryValueCache(ctx, cfg), nil
}

// Prepare compiles query over the policy and data once; Eval then answers
// it per input.
func Prepare(ctx context.Context, query string, data map[string]any) (rego.PreparedEvalQuery, error) {
	pq, err := rego.New(
		rego.Query(query),
		rego.Module("policy.rego", Policy),
		// OPA's store optimized for reads, as the server's
		// --optimize-store-for-read-speed: data is kept as AST values, not
		// converted on every read.
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
	).PrepareForEval(ctx)
	if err != nil {
		return pq, fmt.Errorf("opabench: preparing %s: %w", query, err)
	}
	return pq, nil
}

// Input is the policy's input for one check.
func Input(token, action, resource string) map[string]any {
	return map[string]any{"token": token, "action": action, "resource": resource}
}

// Allowed evaluates QueryAllow for one check. jwtCache may be nil (no
// cache: every query verifies the token's signature).
func Allowed(ctx context.Context, pq rego.PreparedEvalQuery, jwtCache cache.InterQueryValueCache, token, action, resource string) (bool, error) {
	opts := []rego.EvalOption{rego.EvalInput(Input(token, action, resource))}
	if jwtCache != nil {
		opts = append(opts, rego.EvalInterQueryBuiltinValueCache(jwtCache))
	}
	rs, err := pq.Eval(ctx, opts...)
	if err != nil {
		return false, fmt.Errorf("opabench: evaluating: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false, fmt.Errorf("opabench: %d results, want 1", len(rs))
	}
	allow, ok := rs[0].Expressions[0].Value.(bool)
	if !ok {
		return false, fmt.Errorf("opabench: allow is %T, not a boolean", rs[0].Expressions[0].Value)
	}
	return allow, nil
}

// Package sidecar is Warden's decision engine: it verifies bearer tokens
// against the issuers of an account, resolves the token's agent in the state
// snapshot, applies inline permissions and matches the agent's grants. It
// serves the check API over HTTP.
//
// A check with a token seen before costs a map lookup and a walk over the
// agent's own grants: the token's signature is verified once per token while
// its issuer's keys are unchanged, and the agent resolution is memoized per
// state snapshot. Decisions themselves are never cached.
package sidecar

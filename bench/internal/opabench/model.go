package opabench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
)

// Model is what both sides are given: one account's issuers (with uploaded
// keys) and agents, and the deployment's settings that decisions depend on.
type Model struct {
	// Account is the account of the issuers and agents, and the default
	// account of checks whose resource names none.
	Account string
	// Audiences are the accepted aud values.
	Audiences []string
	Issuers   []model.Issuer
	Agents    []model.Agent
	// PermissionsClaim names the inline-permissions claim;
	// sdk.PermissionsClaim when empty.
	PermissionsClaim string
}

// Data exports the model as the policy's data document: {"warden": …}, the
// layout policy.rego describes. Keys are re-encoded as SPKI PEM, with the
// algorithms their type allows. Issuers with a jsonKeysUrl are refused:
// the policy reads keys from data only.
func (m Model) Data() (map[string]any, error) {
	claim := m.PermissionsClaim
	if claim == "" {
		claim = sdk.PermissionsClaim
	}
	issuers := map[string]any{}
	for _, iss := range m.Issuers {
		if iss.JSONKeysURL != "" {
			return nil, fmt.Errorf("opabench: issuer %q: key URLs are not exported, only uploaded keys", iss.ID)
		}
		keys := map[string]any{}
		for _, k := range iss.PublicKeys {
			cert, algs, err := exportKey(k.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("opabench: issuer %q key %q: %w", iss.ID, k.KeyID, err)
			}
			keys[k.KeyID] = map[string]any{"cert": cert, "algs": algs}
		}
		issuers[iss.ID] = map[string]any{"keys": keys}
	}
	identities := map[string]map[string]any{}
	agents := map[string]any{}
	for _, a := range m.Agents {
		grants := make([]any, len(a.Grants))
		for i, g := range a.Grants {
			grants[i] = map[string]any{"action": g.Action, "resource": model.NormalizeResource(g.Resource)}
		}
		agents[a.ID] = map[string]any{"type": string(a.Type), "grants": grants}
		for _, id := range a.Identities {
			if identities[id.IssuerID] == nil {
				identities[id.IssuerID] = map[string]any{}
			}
			identities[id.IssuerID][id.Subject] = a.ID
		}
	}
	ids := map[string]any{}
	for iss, subs := range identities {
		ids[iss] = subs
	}
	auds := make([]any, len(m.Audiences))
	for i, a := range m.Audiences {
		auds[i] = a
	}
	return map[string]any{"warden": map[string]any{
		"audiences":         auds,
		"default_account":   m.Account,
		"permissions_claim": claim,
		"accounts": map[string]any{
			m.Account: map[string]any{"issuers": issuers, "identities": ids, "agents": agents},
		},
	}}, nil
}

// exportKey parses an uploaded PEM key with Warden's own parser (so it
// takes what Warden takes: SPKI, PKCS#1 or a certificate, of a supported
// type and size) and returns it as SPKI PEM with the JWS algorithms its type
// allows, as Warden's verifier allows them.
func exportKey(text string) (string, []any, error) {
	pub, err := sidecar.ParsePublicKey(text)
	if err != nil {
		return "", nil, err
	}
	var algs []any
	switch k := pub.(type) {
	case *rsa.PublicKey:
		algs = []any{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []any{"ES256"}
		case elliptic.P384():
			algs = []any{"ES384"}
		case elliptic.P521():
			algs = []any{"ES512"}
		}
	case ed25519.PublicKey:
		algs = []any{"EdDSA"}
	}
	if algs == nil {
		return "", nil, fmt.Errorf("unsupported key type %T", pub)
	}
	out, err := sdk.PublicKeyPEM(pub)
	return out, algs, err
}

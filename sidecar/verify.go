package sidecar

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/jws"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
	"github.com/wardenauthz/warden/sidecar/state"
)

// Verification failures met in more than one place; each is an
// ErrInvalidToken.
var (
	errNoKid    = &denial{class: ErrInvalidToken, msg: "token has no kid header"}
	errNoIssuer = &denial{class: ErrInvalidToken, msg: "token has no iss claim"}
	errCrit     = &denial{class: ErrInvalidToken, msg: "token header names critical extensions (crit), which Warden does not support"}
)

// tokens holds parsed tokens for reuse: a token's parts are decoded into
// its buffer, which the next parse reuses.
var tokens = sync.Pool{New: func() any { return new(jws.Token) }}

// verify checks a token's signature against its issuer's keys in account,
// then its claims, and returns a cache entry, or the reason it failed. The
// token is parsed once, in golang-jwt's order of checks: its form, then the
// key (so an unknown issuer is named even when the signature is bad), then
// the signature, then the claims.
func (e *Engine) verify(ctx context.Context, snap *state.Snapshot, account, token string, now time.Time) (*entry, error) {
	t := tokens.Get().(*jws.Token)
	defer tokens.Put(t)
	if err := t.Parse(token, e.cfg.PermissionsClaim); err != nil {
		return nil, parseError(err)
	}
	ent := &entry{account: account, verifiedIn: snap}
	key, err := e.keyFor(ctx, snap, ent, t)
	if err != nil {
		return nil, err
	}
	if err := t.Method.Verify(t.SigningInput, t.Signature, key); err != nil {
		return nil, errSignature
	}
	if err := e.checkClaims(ent, &t.Claims, now); err != nil {
		return nil, err
	}
	return ent, nil
}

// Denials of a token that did not parse or verify.
var (
	errMalformed = invalid("malformed token")
	errAlgorithm = invalid("algorithm not allowed")
	errSignature = invalid("invalid signature")
)

// parseError is the denial of a token jws.Parse refused.
func parseError(err error) error {
	if errors.Is(err, jws.ErrUnverifiable) {
		return errAlgorithm
	}
	return errMalformed
}

// keyFor finds the key a token claims to be signed with, recording the
// issuer's key state in ent.
func (e *Engine) keyFor(ctx context.Context, snap *state.Snapshot, ent *entry, t *jws.Token) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(keys.Algorithms, alg) {
		return nil, invalid("algorithm not allowed: %s", quote(alg))
	}
	if t.Header.Crit.Present() {
		// RFC 7515: a recipient must refuse a token whose crit names an
		// extension it does not understand, and Warden understands none.
		return nil, errCrit
	}
	kid := t.Header.Kid.String()
	if kid == "" {
		return nil, errNoKid
	}
	iss := t.Claims.Iss.String()
	if iss == "" {
		return nil, errNoIssuer
	}
	row, ok := snap.Issuer(ent.account, iss)
	if !ok {
		// Only now tell an unknown account from an unknown issuer, so a
		// valid token costs one lookup, not two.
		if !snap.HasAccount(ent.account) {
			return nil, invalid("unknown account")
		}
		return nil, invalid("unknown issuer %s", quote(iss))
	}
	// The row's id is the same text, held once for every token of the
	// issuer: the claim's copy is left to the collector.
	ent.issuer, ent.digest = row.ID, row.Digest
	var key crypto.PublicKey
	if url := row.Issuer.JSONKeysURL; url != "" {
		rm := e.keys.Remote(ent.account, iss, url)
		k, gen, err := rm.Key(ctx, kid)
		if err != nil {
			if errors.Is(err, keys.ErrUnknownKid) || errors.Is(err, keys.ErrRateLimited) {
				return nil, invalid("unknown key id %s", quote(kid))
			}
			return nil, &keySourceError{issuer: iss, err: err}
		}
		key, ent.remote, ent.remoteGen = k, rm, gen
	} else {
		key = row.Keys[kid]
		if key == nil {
			if _, bad := row.KeyErrors[kid]; bad {
				return nil, invalid("the issuer's key with this id did not parse: %s", quote(kid))
			}
			return nil, invalid("unknown key id %s", quote(kid))
		}
	}
	if !keys.FitsAlg(alg, key) {
		return nil, invalid("algorithm does not fit the key type: %s with key %s", alg, quote(kid))
	}
	return key, nil
}

// keySourceError is a failed lookup of the keys an issuer publishes at a
// URL. Its text names the issuer and the kind of failure, never the
// details (hosts, addresses, resolvers), which the key registry logs.
type keySourceError struct {
	issuer string
	err    error
}

// Is makes it an ErrInvalidToken.
func (e *keySourceError) Is(target error) bool { return target == ErrInvalidToken }

func (e *keySourceError) Error() string {
	reason := keys.PublicReason(e.err)
	if reason == "" {
		reason = "could not be used"
	}
	return fmt.Sprintf("the keys of issuer %s %s", quote(e.issuer), reason)
}

// checkClaims validates the claims of a token whose signature checked out,
// and fills ent.
func (e *Engine) checkClaims(ent *entry, claims *jws.Claims, now time.Time) error {
	sub := claims.Sub.String()
	if sub == "" {
		return invalid("token has no sub claim")
	}
	ent.subject = sub
	exp, hasExp, ok := timeClaim(&claims.Exp)
	if !ok {
		return invalid("malformed exp claim")
	}
	if !hasExp && !e.cfg.AllowTokensWithoutExp {
		return invalid("token has no exp claim")
	}
	nbf, _, ok := timeClaim(&claims.Nbf)
	if !ok {
		return invalid("malformed nbf claim")
	}
	if _, _, ok := timeClaim(&claims.Iat); !ok {
		return invalid("malformed iat claim")
	}
	if hasExp {
		ent.exp = max(exp, 1)
	}
	ent.nbf = nbf
	aud, err := jws.Audience(&claims.Aud)
	if err != nil {
		return invalid("malformed aud claim")
	}
	if len(aud) == 0 {
		return invalid("token has no aud claim")
	}
	// The audiences accepted never change: a token checked once needs no
	// check on a hit, and its entry keeps no copy of its aud.
	if !e.audienceOK(aud) {
		return errAudience
	}
	if err := e.checkTimes(ent.exp, ent.nbf, now); err != nil {
		return err
	}
	if claims.Extra.Present() {
		ent.hasInline = true
		var raw any
		if err := json.Unmarshal(claims.Extra.Raw, &raw); err != nil {
			// jws checked the text; this cannot fail.
			return errMalformed
		}
		ent.inline, err = parseInline(raw)
		if err != nil {
			ent.inlineErr = &denial{class: ErrInlinePermissions, msg: "malformed inline permissions: " + err.Error()}
		}
	}
	return nil
}

// maxTimeClaim is the latest time a claim may name: the end of year 9999.
// Past it, converting seconds to a time overflows, and a claim that
// overflows must not pass (an nbf of 1e19 would wrap to the past).
const maxTimeClaim = 253402300799

// timeClaim reads a NumericDate claim (exp, nbf, iat) in whole seconds. It
// reports whether the claim is present, and false in ok when it is not a
// finite number from 0 to maxTimeClaim: out-of-range times fail closed.
func timeClaim(v *jws.Value) (secs int64, present, ok bool) {
	switch v.Kind {
	case jws.Absent:
		return 0, false, true
	case jws.Number:
		if math.IsNaN(v.Num) || v.Num < 0 || v.Num > maxTimeClaim {
			return 0, true, false
		}
		return int64(v.Num), true, true
	}
	return 0, true, false
}

// parseInline reads an inline-permissions claim: {allow: [{action,
// resource}]}. A claim without allow grants nothing.
func parseInline(raw any) ([]model.Permission, error) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("the claim is not an object")
	}
	rawAllow, ok := obj["allow"]
	if !ok {
		return []model.Permission{}, nil
	}
	list, ok := rawAllow.([]any)
	if !ok {
		return nil, errors.New(`"allow" is not an array`)
	}
	perms := make([]model.Permission, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf(`"allow[%d]" is not an object`, i)
		}
		action, ok := m["action"].(string)
		if !ok || action == "" {
			return nil, fmt.Errorf(`"allow[%d].action" must be a non-empty string`, i)
		}
		resource, ok := m["resource"].(string)
		if !ok || resource == "" {
			return nil, fmt.Errorf(`"allow[%d].resource" must be a non-empty string`, i)
		}
		p := model.Permission{Action: action, Resource: resource}
		var fe *model.FieldError
		if err := model.ValidatePermission(p); errors.As(err, &fe) {
			return nil, fmt.Errorf(`"allow[%d].%s": %w`, i, fe.Field, fe.Err)
		}
		perms = append(perms, p)
	}
	return perms, nil
}

// quote quotes a token-supplied string for a reason, cut to a sane length.
func quote(s string) string {
	const maxLen = 80
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return fmt.Sprintf("%q", s)
}

package sidecar

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
	"github.com/wardenauthz/warden/sidecar/state"
)

// Verification failures. Their text is the decision's reason; none of them
// quotes the token.
var (
	errAlgorithm    = errors.New("algorithm not allowed")
	errNoKid        = errors.New("token has no kid header")
	errNoIssuer     = errors.New("token has no iss claim")
	errUnknownIss   = errors.New("unknown issuer")
	errUnknownKid   = errors.New("unknown key id")
	errAlgKeyType   = errors.New("algorithm does not fit the key type")
	errUnknownAcct  = errors.New("unknown account")
	errBadKeyUpload = errors.New("the issuer's key with this id did not parse")
	errCrit         = errors.New("token header names critical extensions (crit), which Warden does not support")
)

// verify checks a token's signature against its issuer's keys in account,
// then its claims, and returns a cache entry, or the reason it failed.
func (e *Engine) verify(ctx context.Context, snap *state.Snapshot, account, token string, now time.Time) (*entry, string) {
	ent := &entry{account: account, verifiedIn: snap}
	claims := jwt.MapClaims{}
	_, err := e.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return e.keyFor(ctx, snap, ent, t, claims)
	})
	if err != nil {
		return nil, verifyReason(err)
	}
	if reason := e.checkClaims(ent, claims, now); reason != "" {
		return nil, reason
	}
	return ent, ""
}

// keyFor finds the key a token claims to be signed with, recording the
// issuer's key state in ent.
func (e *Engine) keyFor(ctx context.Context, snap *state.Snapshot, ent *entry, t *jwt.Token, claims jwt.MapClaims) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(keys.Algorithms, alg) {
		return nil, fmt.Errorf("%w: %s", errAlgorithm, quote(alg))
	}
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515: a recipient must refuse a token whose crit names an
		// extension it does not understand, and Warden understands none.
		return nil, errCrit
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKid
	}
	iss, _ := claims["iss"].(string)
	if iss == "" {
		return nil, errNoIssuer
	}
	row, ok := snap.Issuer(ent.account, iss)
	if !ok {
		// Only now tell an unknown account from an unknown issuer, so a
		// valid token costs one lookup, not two.
		if !snap.HasAccount(ent.account) {
			return nil, errUnknownAcct
		}
		return nil, fmt.Errorf("%w %s", errUnknownIss, quote(iss))
	}
	ent.issuer, ent.digest = iss, row.Digest
	var key crypto.PublicKey
	if url := row.Issuer.JSONKeysURL; url != "" {
		rm := e.keys.Remote(ent.account, iss, url)
		k, gen, err := rm.Key(ctx, kid)
		if err != nil {
			if errors.Is(err, keys.ErrUnknownKid) || errors.Is(err, keys.ErrRateLimited) {
				return nil, fmt.Errorf("%w %s", errUnknownKid, quote(kid))
			}
			return nil, &keySourceError{issuer: iss, err: err}
		}
		key, ent.remote, ent.remoteGen = k, rm, gen
	} else {
		key = row.Keys[kid]
		if key == nil {
			if _, bad := row.KeyErrors[kid]; bad {
				return nil, fmt.Errorf("%w: %s", errBadKeyUpload, quote(kid))
			}
			return nil, fmt.Errorf("%w %s", errUnknownKid, quote(kid))
		}
	}
	if !keys.FitsAlg(alg, key) {
		return nil, fmt.Errorf("%w: %s with key %s", errAlgKeyType, alg, quote(kid))
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

func (e *keySourceError) Error() string {
	reason := keys.PublicReason(e.err)
	if reason == "" {
		reason = "could not be used"
	}
	return fmt.Sprintf("the keys of issuer %s %s", quote(e.issuer), reason)
}

// verifyReason turns a parse or verification error into a reason.
func verifyReason(err error) string {
	var kse *keySourceError
	if errors.As(err, &kse) {
		return kse.Error()
	}
	for _, known := range []error{errUnknownAcct, errAlgorithm, errCrit, errNoKid, errNoIssuer, errUnknownIss, errUnknownKid,
		errAlgKeyType, errBadKeyUpload} {
		if errors.Is(err, known) {
			// The wrapped keyfunc error is the last line of jwt's joined
			// message; rebuild ours from the chain instead.
			return unwrapTo(err, known).Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrSignatureInvalid):
		return "invalid signature"
	}
	return "invalid token"
}

// unwrapTo returns the error in err's tree that wraps or is target and is
// not one of jwt's own wrappers.
func unwrapTo(err, target error) error {
	var found error
	var walk func(error)
	walk = func(e error) {
		if e == nil || found != nil {
			return
		}
		if !errors.Is(e, jwt.ErrTokenUnverifiable) && errors.Is(e, target) {
			found = e
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if found == nil {
		return target
	}
	return found
}

// checkClaims validates the claims of a token whose signature checked out,
// and fills ent.
func (e *Engine) checkClaims(ent *entry, claims jwt.MapClaims, now time.Time) string {
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return "token has no sub claim"
	}
	ent.subject = sub
	exp, hasExp, ok := timeClaim(claims, "exp")
	if !ok {
		return "malformed exp claim"
	}
	if !hasExp && !e.cfg.AllowTokensWithoutExp {
		return "token has no exp claim"
	}
	nbf, _, ok := timeClaim(claims, "nbf")
	if !ok {
		return "malformed nbf claim"
	}
	if _, _, ok := timeClaim(claims, "iat"); !ok {
		return "malformed iat claim"
	}
	if hasExp {
		ent.exp = max(exp, 1)
	}
	ent.nbf = nbf
	aud, err := claims.GetAudience()
	if err != nil {
		return "malformed aud claim"
	}
	if len(aud) == 0 {
		return "token has no aud claim"
	}
	ent.aud = aud
	if !e.audienceOK(aud) {
		return "token audience is not accepted"
	}
	if reason := e.checkTimes(ent.exp, ent.nbf, now); reason != "" {
		return reason
	}
	if raw, ok := claims[e.cfg.PermissionsClaim]; ok {
		ent.hasInline = true
		ent.inline, err = parseInline(raw)
		if err != nil {
			ent.inlineErr = "malformed inline permissions: " + err.Error()
		}
	}
	return ""
}

// maxTimeClaim is the latest time a claim may name: the end of year 9999.
// Past it, converting seconds to a time overflows, and a claim that
// overflows must not pass (an nbf of 1e19 would wrap to the past).
const maxTimeClaim = 253402300799

// timeClaim reads a NumericDate claim (exp, nbf, iat) in whole seconds. It
// reports whether the claim is present, and false in ok when it is not a
// finite number from 0 to maxTimeClaim: out-of-range times fail closed.
func timeClaim(claims jwt.MapClaims, name string) (secs int64, present, ok bool) {
	raw, present := claims[name]
	if !present {
		return 0, false, true
	}
	var v float64
	switch n := raw.(type) {
	case float64:
		v = n
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0, true, false
		}
		v = f
	default:
		return 0, true, false
	}
	if math.IsNaN(v) || v < 0 || v > maxTimeClaim {
		return 0, true, false
	}
	return int64(v), true, true
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

package sidecar

import (
	"crypto"
	"slices"

	"github.com/wardenauthz/warden/sidecar/internal/jws"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
)

// ParsePublicKey parses a public key as an issuer's publicKeys hold it: PEM
// SPKI, PKCS#1 or an X.509 certificate, of a supported type and size. The
// error never quotes the key.
func ParsePublicKey(pemText string) (crypto.PublicKey, error) {
	return keys.ParsePEM(pemText)
}

// KeyedClaims are the identifying claims of a token verified by
// VerifyWithKey.
type KeyedClaims struct {
	KeyID, Issuer, Subject string
}

// VerifyWithKey verifies an agent token against one given key, with the
// engine's rules: the algorithm allow-list, each algorithm only with its
// own key type, a kid header, iss, sub, an accepted aud, and exp and nbf
// with the leeway. The init flow uses it to check that an enrolling agent
// holds the private key of the public key it enrolls.
func (e *Engine) VerifyWithKey(token string, key crypto.PublicKey) (KeyedClaims, error) {
	if len(token) > MaxTokenSize {
		return KeyedClaims{}, errTooLarge
	}
	t := tokens.Get().(*jws.Token)
	defer tokens.Put(t)
	if err := t.Parse(token, e.cfg.PermissionsClaim); err != nil {
		return KeyedClaims{}, parseError(err)
	}
	alg := t.Method.Alg()
	if !slices.Contains(keys.Algorithms, alg) {
		return KeyedClaims{}, invalid("algorithm not allowed: %s", quote(alg))
	}
	kid := t.Header.Kid.String()
	if kid == "" {
		return KeyedClaims{}, errNoKid
	}
	if !keys.FitsAlg(alg, key) {
		return KeyedClaims{}, invalid("algorithm does not fit the key type: %s", alg)
	}
	if err := t.Method.Verify(t.SigningInput, t.Signature, key); err != nil {
		return KeyedClaims{}, errSignature
	}
	iss := t.Claims.Iss.String()
	if iss == "" {
		return KeyedClaims{}, errNoIssuer
	}
	ent := &entry{}
	if err := e.checkClaims(ent, &t.Claims, e.now()); err != nil {
		return KeyedClaims{}, err
	}
	return KeyedClaims{KeyID: kid, Issuer: iss, Subject: ent.subject}, nil
}

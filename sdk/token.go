package sdk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk/model"
)

// DefaultTokenLifetime is the expiry of minted tokens when none is given.
const DefaultTokenLifetime = time.Hour

// PermissionsClaim is the default inline-permissions claim.
const PermissionsClaim = model.PermissionsClaim

// TokenSpec describes an agent token to mint.
type TokenSpec struct {
	// PrivateKey signs the token: *rsa.PrivateKey (RS256), *ecdsa.PrivateKey
	// (ES256/384/512 by curve) or ed25519.PrivateKey (EdDSA).
	PrivateKey crypto.Signer
	// Algorithm overrides the default algorithm of the key type, e.g. PS256.
	Algorithm string
	KeyID     string
	Issuer    string
	Subject   string
	Audience  string
	// Lifetime is the time to expiry; DefaultTokenLifetime when zero.
	Lifetime time.Duration
	// Now is the issue time; the current time when zero.
	Now time.Time
	// Permissions, when not nil, are inline permissions: they narrow what
	// the agent may do with this token.
	Permissions []model.Permission
	// PermissionsClaim names the claim; PermissionsClaim when empty.
	PermissionsClaim string
}

// MintToken signs an agent token.
func MintToken(spec TokenSpec) (string, error) {
	var errs []error
	if spec.PrivateKey == nil {
		errs = append(errs, errors.New("a private key is required"))
	}
	for name, v := range map[string]string{"key id": spec.KeyID, "issuer": spec.Issuer, "subject": spec.Subject, "audience": spec.Audience} {
		if v == "" {
			errs = append(errs, fmt.Errorf("the %s is required", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	method, err := signingMethod(spec.PrivateKey, spec.Algorithm)
	if err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	life := spec.Lifetime
	if life == 0 {
		life = DefaultTokenLifetime
	}
	claims := jwt.MapClaims{
		"iss": spec.Issuer,
		"sub": spec.Subject,
		"aud": spec.Audience,
		"iat": now.Unix(),
		"exp": now.Add(life).Unix(),
	}
	if spec.Permissions != nil {
		name := spec.PermissionsClaim
		if name == "" {
			name = PermissionsClaim
		}
		claims[name] = model.Access{Allow: spec.Permissions}
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = spec.KeyID
	return t.SignedString(spec.PrivateKey)
}

func signingMethod(key crypto.Signer, alg string) (jwt.SigningMethod, error) {
	if alg != "" {
		m := jwt.GetSigningMethod(alg)
		if m == nil {
			return nil, fmt.Errorf("unknown algorithm %q", alg)
		}
		return m, nil
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jwt.SigningMethodES256, nil
		case elliptic.P384():
			return jwt.SigningMethodES384, nil
		case elliptic.P521():
			return jwt.SigningMethodES512, nil
		}
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// PublicKeyPEM encodes a public key as SPKI PEM ("PUBLIC KEY"), the form
// issuers' publicKeys take.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

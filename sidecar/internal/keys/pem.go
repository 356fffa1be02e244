package keys

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
	"strings"
)

// Errors of key parsing. They never quote key material.
var (
	ErrNoPEM          = errors.New("no PEM block found")
	ErrUnsupportedKey = errors.New("unsupported key type")
)

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// ParsePEM parses a public key in PEM: SPKI ("PUBLIC KEY"), PKCS#1 ("RSA
// PUBLIC KEY") or an X.509 certificate ("CERTIFICATE"). Only RSA (2048 bits
// or more), ECDSA on P-256, P-384 and P-521, and Ed25519 keys are accepted.
func ParsePEM(s string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, ErrNoPEM
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block of type %q is not a public key or certificate", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", strings.ToLower(block.Type), err)
	}
	return key, CheckKey(key)
}

// CheckKey reports whether key is of a supported type and size.
func CheckKey(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: RSA key of %d bits; at least %d are required", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
}

// FitsAlg reports whether a JWS algorithm may be used with key: RS* and PS*
// with RSA, ES256/384/512 with ECDSA on P-256/384/521, EdDSA with Ed25519.
// HMAC and "none" fit no key.
func FitsAlg(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// Algorithms is the allow-list of JWS algorithms for agent tokens.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

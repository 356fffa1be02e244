package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Set is an immutable set of public keys by kid.
type Set map[string]crypto.PublicKey

// ParseDocument parses what a jsonKeysUrl serves: a JWKS (RFC 7517), where a
// key's x5c[0] certificate wins over its key parameters, or an object mapping
// kid to a PEM key or certificate. Keys that do not parse are left out and
// reported in the joined error; the error is nil when every key parsed. A
// document that is neither form is an error with an empty set.
func ParseDocument(body []byte) (Set, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("key document is not a JSON object: %w", err)
	}
	if raw, ok := doc["keys"]; ok && isArray(raw) {
		return parseJWKS(raw)
	}
	return parseKidMap(doc)
}

func isArray(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '['
}

func parseJWKS(raw json.RawMessage) (Set, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf(`JWKS "keys": %w`, err)
	}
	set := make(Set, len(entries))
	var errs []error
	for i, e := range entries {
		kid, key, err := parseJWK(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("JWKS key %d: %w", i, err))
			continue
		}
		set[kid] = key
	}
	return set, errors.Join(errs...)
}

// parseJWK parses one JWK. x5c[0] is used when present, as Fusebit does;
// otherwise the key parameters. A key's alg hint is not enforced beyond its
// key type, which FitsAlg checks at verification.
func parseJWK(raw json.RawMessage) (string, crypto.PublicKey, error) {
	var head struct {
		Kid string   `json:"kid"`
		X5c []string `json:"x5c"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", nil, err
	}
	if head.Kid == "" {
		return "", nil, errors.New(`no "kid"`)
	}
	if len(head.X5c) > 0 {
		der, err := base64.StdEncoding.DecodeString(head.X5c[0])
		if err != nil {
			return head.Kid, nil, fmt.Errorf("kid %q: x5c[0] is not base64: %w", head.Kid, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return head.Kid, nil, fmt.Errorf("kid %q: x5c[0]: %w", head.Kid, err)
		}
		if err := CheckKey(cert.PublicKey); err != nil {
			return head.Kid, nil, fmt.Errorf("kid %q: %w", head.Kid, err)
		}
		return head.Kid, cert.PublicKey, nil
	}
	k, err := jwk.ParseKey(raw)
	if err != nil {
		return head.Kid, nil, fmt.Errorf("kid %q: %w", head.Kid, err)
	}
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		return head.Kid, nil, fmt.Errorf("kid %q: %w", head.Kid, err)
	}
	var key any
	if err := pub.Raw(&key); err != nil {
		return head.Kid, nil, fmt.Errorf("kid %q: %w", head.Kid, err)
	}
	if err := CheckKey(key); err != nil {
		return head.Kid, nil, fmt.Errorf("kid %q: %w", head.Kid, err)
	}
	return head.Kid, key, nil
}

func parseKidMap(doc map[string]json.RawMessage) (Set, error) {
	set := make(Set, len(doc))
	var errs []error
	for kid, raw := range doc {
		var pemText string
		if err := json.Unmarshal(raw, &pemText); err != nil {
			return nil, errors.New(`key document is neither a JWKS (no "keys" array) nor a map of kid to PEM`)
		}
		key, err := ParsePEM(pemText)
		if err != nil {
			errs = append(errs, fmt.Errorf("kid %q: %w", kid, err))
			continue
		}
		set[kid] = key
	}
	return set, errors.Join(errs...)
}

package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func FuzzParsePEM(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	f.Add("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n")
	f.Add("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParsePEM(s)
		if err == nil && CheckKey(key) != nil {
			t.Fatalf("accepted an unsupported key %T", key)
		}
		if err != nil && len(s) > 40 && strings.Contains(err.Error(), s) {
			t.Fatal("error quotes the input")
		}
	})
}

func FuzzParseDocument(f *testing.F) {
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	f.Add(`{"keys":[{"kid":"x","x5c":["AAAA"]}]}`)
	f.Add(`{"k1":"-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----"}`)
	f.Add(`{"keys":{}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		set, _ := ParseDocument([]byte(doc))
		for kid, k := range set {
			if err := CheckKey(k); err != nil {
				t.Fatalf("kid %q: accepted %v", kid, err)
			}
		}
	})
}

func FuzzMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=300", "no-store", "public, max-age=99999999", "max-age=-1", `max-age="60"`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if d := MaxAge(h, time.Hour); d < time.Minute || d > 24*time.Hour {
			t.Fatalf("MaxAge(%q) = %s", h, d)
		}
	})
}

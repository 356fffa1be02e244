package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/wardenauthz/warden/internal/tlsfiles"
)

// LoadCAFile reads a PEM bundle of CA certificates, for Config.RootCAs: a
// deployment whose certificate a private CA signed. A file that holds no
// certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pool, err := tlsfiles.ReadCAs(path)
	if err != nil {
		return nil, fmt.Errorf("the CA file %w", err)
	}
	return pool, nil
}

// defaultHTTPClient is the client of a Config without one: a 30s timeout,
// and roots, when not nil, as the only CAs trusted, over TLS 1.2 or later.
func defaultHTTPClient(roots *x509.CertPool) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if roots != nil {
		t, ok := http.DefaultTransport.(*http.Transport)
		if ok {
			t = t.Clone()
		} else {
			t = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		c.Transport = t
	}
	return c
}

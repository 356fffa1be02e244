package tlsfiles_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/tlsfiles"
	"github.com/wardenauthz/warden/internal/tlsfiles/tlstest"
)

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// world is a CA, a server pair written to files, and a client pair.
type world struct {
	ca                   *tlstest.CA
	dir                  string
	cert, key, caFile    string
	server, client, next *tlstest.Pair
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ca := tlstest.NewCA(t, "test CA")
	w := &world{ca: ca, dir: t.TempDir(),
		server: ca.Issue(t, "server", x509.ExtKeyUsageServerAuth),
		next:   ca.Issue(t, "renewed server", x509.ExtKeyUsageServerAuth),
		client: ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)}
	w.cert, w.key, w.caFile = filepath.Join(w.dir, "tls.crt"), filepath.Join(w.dir, "tls.key"), filepath.Join(w.dir, "ca.crt")
	w.server.Write(t, w.cert, w.key)
	tlstest.WriteFile(t, w.caFile, ca.PEM)
	return w
}

// serve serves cfg on loopback until the test ends, closing every
// connection after its handshake.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("x"))
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// served dials addr and returns the leaf the server presented; client,
// when not nil, is presented to the server.
func served(addr string, roots *x509.CertPool, client *tls.Certificate) (*x509.Certificate, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 a refused client certificate is known at the first read.
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not so after 10s; last: %s", what, last)
}

func servesSerial(addr string, roots *x509.CertPool, p *tlstest.Pair) func() (bool, string) {
	return func() (bool, string) {
		leaf, err := served(addr, roots, nil)
		if err != nil {
			return false, err.Error()
		}
		return leaf.SerialNumber.Cmp(p.Cert.SerialNumber) == 0, leaf.Subject.CommonName
	}
}

// TestReload: replaced files are served without a restart, by the poll
// and by the check of a handshake; files that fail to load are logged,
// without key material, and the last good pair stays served until good
// files come.
func TestReload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{
		{"poll", 20 * time.Millisecond},
		{"handshake", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			var log syncBuffer
			r, err := tlsfiles.Load(tlsfiles.Files{Cert: w.cert, Key: w.key}, tlsfiles.Options{Logger: slog.New(slog.NewJSONHandler(&log, nil)), Interval: tc.interval})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(ctx)
			addr := serve(t, r.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
			roots := w.ca.Pool()
			eventually(t, "the first pair served", servesSerial(addr, roots, w.server))

			w.next.Write(t, w.cert, w.key)
			eventually(t, "the renewed pair served", servesSerial(addr, roots, w.next))
			if !strings.Contains(log.String(), `"msg":"reloaded the TLS files"`) || !strings.Contains(log.String(), "renewed server") {
				t.Errorf("the reload was not logged:\n%s", log.String())
			}

			// A key that does not match, then a key that is not PEM: the
			// renewed pair stays served, and each failure is logged once.
			// (A check between the two renames of a renewal may have
			// logged a mismatch already.)
			const mismatch = "private key does not match public key"
			before := strings.Count(log.String(), mismatch)
			third := w.ca.Issue(t, "third", x509.ExtKeyUsageServerAuth)
			tlstest.WriteFile(t, w.cert, third.CertPEM)
			eventually(t, "the mismatch logged", func() (bool, string) {
				_, _ = served(addr, roots, nil) // for the check of a handshake
				return strings.Count(log.String(), mismatch) > before, log.String()
			})
			tlstest.WriteFile(t, w.key, []byte("not a key\n"))
			eventually(t, "the bad key logged", func() (bool, string) {
				_, _ = served(addr, roots, nil)
				return strings.Contains(log.String(), "failed to find any PEM data in key input"), log.String()
			})
			if ok, got := servesSerial(addr, roots, w.next)(); !ok {
				t.Fatalf("served %s after failed reloads; want the renewed pair", got)
			}
			if n := strings.Count(log.String(), mismatch) - before; n != 1 {
				t.Errorf("the mismatch was logged %d times", n)
			}
			for _, key := range [][]byte{w.server.KeyPEM, w.next.KeyPEM, third.KeyPEM} {
				if secret := string(key[30:80]); strings.Contains(log.String(), secret) || strings.Contains(log.String(), "PRIVATE KEY") {
					t.Fatalf("the log holds key material:\n%s", log.String())
				}
			}
			tlstest.WriteFile(t, w.key, third.KeyPEM)
			eventually(t, "the third pair served", servesSerial(addr, roots, third))
		})
	}
}

// TestReloadClientCA: a server that requires client certificates refuses
// a client without one, accepts one its CA signed, and, once the CA file
// is replaced, refuses the old CA's clients and accepts the new one's.
func TestReloadClientCA(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r, err := tlsfiles.Load(tlsfiles.Files{Cert: w.cert, Key: w.key, CA: w.caFile}, tlsfiles.Options{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	addr := serve(t, r.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert}))
	roots := w.ca.Pool()
	client := w.client.TLS(t)
	if _, err := served(addr, roots, nil); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	if _, err := served(addr, roots, &client); err != nil {
		t.Fatalf("a client of the CA was refused: %v", err)
	}
	other := tlstest.NewCA(t, "other CA")
	otherClient := other.Issue(t, "other client", x509.ExtKeyUsageClientAuth).TLS(t)
	if _, err := served(addr, roots, &otherClient); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	tlstest.WriteFile(t, w.caFile, other.PEM)
	eventually(t, "the other CA's client accepted", func() (bool, string) {
		_, err := served(addr, roots, &otherClient)
		return err == nil, fmt.Sprint(err)
	})
	if _, err := served(addr, roots, &client); err == nil {
		t.Fatal("a client of the replaced CA was still accepted")
	}
}

// TestLoadErrors: each problem names its file and part, every one at
// once, and no message holds key material.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := w.ca.Issue(t, "other", x509.ExtKeyUsageServerAuth)
	missing := filepath.Join(w.dir, "missing.pem")
	garbage := write("garbage.pem", []byte("hello\n"), 0o600)
	keyAsCert := write("key-as-cert.pem", w.server.KeyPEM, 0o600)
	looseKey := write("loose.key", w.server.KeyPEM, 0o644)
	groupKey := write("group.key", w.server.KeyPEM, 0o640)
	otherKey := write("other.key", other.KeyPEM, 0o600)
	// A chain caught while it is written: the leaf, then half of the CA.
	cutChain := write("cut.pem", append(append([]byte{}, w.server.CertPEM...), w.ca.PEM[:len(w.ca.PEM)/2]...), 0o600)
	for _, tc := range []struct {
		name  string
		files tlsfiles.Files
		want  map[tlsfiles.Part]string // part: what its message says
	}{
		{"missing cert", tlsfiles.Files{Cert: missing, Key: w.key}, map[tlsfiles.Part]string{tlsfiles.PartCert: missing + ": no such file or directory"}},
		{"cert not PEM", tlsfiles.Files{Cert: garbage, Key: w.key}, map[tlsfiles.Part]string{tlsfiles.PartCert: garbage + ": no PEM certificate in the file"}},
		{"key as cert", tlsfiles.Files{Cert: keyAsCert, Key: w.key}, map[tlsfiles.Part]string{tlsfiles.PartCert: `PEM block 1 is a "PRIVATE KEY", not a CERTIFICATE`}},
		{"missing key", tlsfiles.Files{Cert: w.cert, Key: missing}, map[tlsfiles.Part]string{tlsfiles.PartKey: missing + ": no such file or directory"}},
		{"key not PEM", tlsfiles.Files{Cert: w.cert, Key: garbage}, map[tlsfiles.Part]string{tlsfiles.PartKey: garbage + ": tls: failed to find any PEM data in key input"}},
		{"key of another cert", tlsfiles.Files{Cert: w.cert, Key: otherKey}, map[tlsfiles.Part]string{tlsfiles.PartKey: "private key does not match public key (certificate " + w.cert + ")"}},
		{"key readable by others", tlsfiles.Files{Cert: w.cert, Key: looseKey}, map[tlsfiles.Part]string{tlsfiles.PartKey: looseKey + ": a private key readable by group or others (mode 0644); run chmod 600 " + looseKey}},
		{"key readable by group", tlsfiles.Files{Cert: w.cert, Key: groupKey}, map[tlsfiles.Part]string{tlsfiles.PartKey: "(mode 0640); run chmod 600 " + groupKey}},
		{"chain cut short", tlsfiles.Files{Cert: cutChain, Key: w.key}, map[tlsfiles.Part]string{tlsfiles.PartCert: cutChain + ": PEM block 2 is incomplete"}},
		{"CA bundle cut short", tlsfiles.Files{CA: cutChain}, map[tlsfiles.Part]string{tlsfiles.PartCA: cutChain + ": PEM block 2 is incomplete"}},
		{"CA not PEM", tlsfiles.Files{CA: garbage}, map[tlsfiles.Part]string{tlsfiles.PartCA: garbage + ": no PEM certificate in the file"}},
		{"every problem", tlsfiles.Files{Cert: garbage, Key: looseKey, CA: missing}, map[tlsfiles.Part]string{
			tlsfiles.PartCert: "no PEM certificate", tlsfiles.PartKey: "chmod 600", tlsfiles.PartCA: "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsfiles.Load(tc.files, tlsfiles.Options{})
			if err == nil {
				t.Fatal("loaded")
			}
			for part, want := range tc.want {
				found := false
				for _, e := range unjoin(err) {
					var fe *tlsfiles.FileError
					if errors.As(e, &fe) && fe.Part == part && strings.Contains(e.Error(), want) {
						found = true
					}
				}
				if !found {
					t.Errorf("%v; want a %s error containing %q", err, part, want)
				}
			}
			if strings.Contains(err.Error(), string(w.server.KeyPEM[30:80])) {
				t.Errorf("the error holds key material: %v", err)
			}
		})
	}
	if err := tlsfiles.CheckKeyFile(looseKey); !errors.Is(err, tlsfiles.ErrKeyExposed) {
		t.Errorf("CheckKeyFile of a key of mode 0644: %v", err)
	}
	if err := tlsfiles.CheckKeyFile(w.key); err != nil {
		t.Errorf("CheckKeyFile of a key of mode 0600: %v", err)
	}
	if _, err := tlsfiles.Load(tlsfiles.Files{Cert: w.cert}, tlsfiles.Options{}); err == nil {
		t.Error("a certificate without its key was loaded")
	}
}

// TestReloadRefusesExposedKey: a key whose file becomes readable by
// others is not loaded; the pair served stays so.
func TestReloadRefusesExposedKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var log syncBuffer
	r, err := tlsfiles.Load(tlsfiles.Files{Cert: w.cert, Key: w.key}, tlsfiles.Options{Logger: slog.New(slog.NewJSONHandler(&log, nil)), Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	w.next.Write(t, w.cert, w.key)
	if err := os.Chmod(w.key, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the exposed key logged", func() (bool, string) {
		return strings.Contains(log.String(), "run chmod 600"), log.String()
	})
	if r.Leaf().SerialNumber.Cmp(w.server.Cert.SerialNumber) != 0 {
		t.Fatalf("serving %s; want the first pair", r.Leaf().Subject)
	}
	if err := os.Chmod(w.key, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the renewed pair loaded", func() (bool, string) {
		return r.Leaf().SerialNumber.Cmp(w.next.Cert.SerialNumber) == 0, r.Leaf().Subject.String()
	})
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Package tlsfiles serves a certificate and its key, and a CA bundle,
// from PEM files, and reloads them when the files change, without a
// restart: cert-manager and mounted secrets replace them in place before
// they expire. A handshake gets what was loaded last; a new set of files
// that fails to load is logged and the last good one stays served.
package tlsfiles

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Files are the PEM files to serve. Cert and Key go together; CA may come
// with them, or alone.
type Files struct {
	// Cert is the certificate chain, leaf first; Key its private key,
	// which group and others may not read (CheckKeyFile).
	Cert, Key string
	// CA is a bundle of CA certificates: the client CAs of a server, or
	// the root CAs of a client.
	CA string
}

// Options adjust a Reloader. The zero value of each field is its default.
type Options struct {
	// Logger receives reloads and failed reloads; default: none.
	Logger *slog.Logger
	// Interval is how often Run reads the files and compares their
	// content with what is served. Default 5s. Handshakes also look at
	// the files' size and modification time, at most once a second, so
	// a replaced file is usually served at the next connection.
	Interval time.Duration
}

// DefaultInterval is the default of Options.Interval.
const DefaultInterval = 5 * time.Second

// lazyEvery bounds how often handshakes look at the files.
const lazyEvery = time.Second

// Reloader serves what Files hold. It is safe for concurrent use.
type Reloader struct {
	files    Files
	log      *slog.Logger
	interval time.Duration

	cur     atomic.Pointer[material]
	checked atomic.Int64 // unix nanoseconds of the last check of a handshake

	mu      sync.Mutex // one check at a time; guards seen and lastErr
	seen    []stamp    // the files' stamps when last read
	lastErr string     // the last failure logged, not logged again
}

// material is one loaded set of files.
type material struct {
	cert *tls.Certificate // nil without Files.Cert
	cas  *x509.CertPool   // nil without Files.CA
	sum  [sha256.Size]byte
}

// stamp is what a handshake compares of a file: its size and time of
// modification (of the target of a symbolic link).
type stamp struct {
	size, mod int64
	ok        bool
}

// Load reads the files. A problem with them is an error, each a
// *FileError naming its file (errors.Join'ed when there are several).
func Load(files Files, o Options) (*Reloader, error) {
	if (files.Cert == "") != (files.Key == "") {
		return nil, errors.New("tlsfiles: a certificate and its key go together")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	r := &Reloader{files: files, log: o.Logger, interval: o.Interval}
	r.seen = r.stat()
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.checked.Store(time.Now().UnixNano())
	return r, nil
}

// Run reads the files every Options.Interval until ctx ends, and serves
// them when their content changed and loads.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check(true)
		}
	}
}

// GetCertificate serves the current certificate (tls.Config's).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.certificate()
}

// GetClientCertificate presents the current certificate to a server
// (tls.Config's).
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.certificate()
}

func (r *Reloader) certificate() (*tls.Certificate, error) {
	m := r.current()
	if m.cert == nil {
		return nil, errors.New("tlsfiles: no certificate is configured")
	}
	return m.cert, nil
}

// CAs returns the current CA bundle; nil without Files.CA.
func (r *Reloader) CAs() *x509.CertPool { return r.current().cas }

// Leaf returns the current certificate's leaf; nil without Files.Cert.
func (r *Reloader) Leaf() *x509.Certificate {
	if m := r.current(); m.cert != nil {
		return m.cert.Leaf
	}
	return nil
}

// ServerConfig returns a server's configuration: on each handshake, base
// with the current certificate and, with Files.CA, the current CA bundle
// as its ClientCAs (base's ClientAuth says whether client certificates
// are required). The configurations are built once per loaded set.
func (r *Reloader) ServerConfig(base *tls.Config) *tls.Config {
	base = base.Clone()
	type derived struct {
		m   *material
		cfg *tls.Config
	}
	var last atomic.Pointer[derived]
	return &tls.Config{
		MinVersion: base.MinVersion,
		NextProtos: base.NextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.current()
			if d := last.Load(); d != nil && d.m == m {
				return d.cfg, nil
			}
			cfg := base.Clone()
			if m.cert != nil {
				cfg.Certificates = []tls.Certificate{*m.cert}
			}
			if m.cas != nil {
				cfg.ClientCAs = m.cas
			}
			last.Store(&derived{m: m, cfg: cfg})
			return cfg, nil
		},
	}
}

// current returns what is served, first looking at the files when no
// handshake has for lazyEvery.
func (r *Reloader) current() *material {
	now := time.Now().UnixNano()
	if last := r.checked.Load(); now-last >= int64(lazyEvery) && r.checked.CompareAndSwap(last, now) {
		r.check(false)
	}
	return r.cur.Load()
}

// check loads the files when they changed: when their stamps did, or,
// with full, when their content did. A failure is logged once, and what
// was served stays so.
func (r *Reloader) check(full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps := r.stat()
	if !full && slices.Equal(stamps, r.seen) {
		return
	}
	r.seen = stamps
	m, err := r.load()
	if err != nil {
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			r.log.Warn("the TLS files changed but do not load; the previous ones stay served", r.fileAttrs("error", msg)...)
		}
		return
	}
	r.lastErr = ""
	if m.sum == r.cur.Load().sum {
		return
	}
	r.cur.Store(m)
	attrs := []any{}
	if m.cert != nil && m.cert.Leaf != nil {
		leaf := m.cert.Leaf
		attrs = append(attrs, "subject", leaf.Subject.String(), "serial", hex.EncodeToString(leaf.SerialNumber.Bytes()),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	r.log.Info("reloaded the TLS files", r.fileAttrs(attrs...)...)
}

// load reads and parses the files.
func (r *Reloader) load() (*material, error) {
	m, c, err := r.files.load()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, b := range [][]byte{c.cert, c.key, c.ca} {
		h.Write([]byte{byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))})
		h.Write(b)
	}
	h.Sum(m.sum[:0])
	return m, nil
}

// stat stamps the files.
func (r *Reloader) stat() []stamp {
	var out []stamp
	for _, p := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			out = append(out, stamp{})
			continue
		}
		out = append(out, stamp{size: fi.Size(), mod: fi.ModTime().UnixNano(), ok: true})
	}
	return out
}

// fileAttrs are the files' paths, then attrs.
func (r *Reloader) fileAttrs(attrs ...any) []any {
	var out []any
	for _, kv := range [][2]string{{"cert", r.files.Cert}, {"key", r.files.Key}, {"ca", r.files.CA}} {
		if kv[1] != "" {
			out = append(out, kv[0], kv[1])
		}
	}
	return append(out, attrs...)
}

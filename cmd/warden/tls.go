package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wardenauthz/warden/internal/tlsfiles"
)

// tlsConfig is how the HTTP listeners serve TLS: the API listener and the
// proxy listener with --tls-cert, the diagnostics listener too with
// --diag-tls. The files are reloaded when they change.
type tlsConfig struct {
	CertFile     string `yaml:"tls-cert"`
	KeyFile      string `yaml:"tls-key"`
	ClientCAFile string `yaml:"tls-client-ca"`
	Diag         bool   `yaml:"diag-tls"`
}

// etcdTLSConfig is how a node reaches an external etcd cluster over TLS.
type etcdTLSConfig struct {
	CAFile   string `yaml:"etcd-cacert"`
	CertFile string `yaml:"etcd-cert"`
	KeyFile  string `yaml:"etcd-key"`
}

// The flags of the TLS files, by the part of tlsfiles.Files they set.
var (
	serveTLSFlags = map[tlsfiles.Part]string{tlsfiles.PartCert: "tls-cert", tlsfiles.PartKey: "tls-key", tlsfiles.PartCA: "tls-client-ca"}
	etcdTLSFlags  = map[tlsfiles.Part]string{tlsfiles.PartCert: "etcd-cert", tlsfiles.PartKey: "etcd-key", tlsfiles.PartCA: "etcd-cacert"}
)

func addTLSFlags(fs *flag.FlagSet, f *serveConfig) {
	fs.StringVar(&f.TLS.CertFile, "tls-cert", "", "`file` with the PEM certificate chain (leaf first) that the API and proxy listeners serve over TLS 1.2 or later; with --tls-key; reloaded when it changes (default: plain HTTP)")
	fs.StringVar(&f.TLS.KeyFile, "tls-key", "", "`file` with the PEM private key of --tls-cert, readable by its owner only (mode 0600); reloaded when it changes")
	fs.StringVar(&f.TLS.ClientCAFile, "tls-client-ca", "", "`file` of PEM CA certificates: the API listener requires client certificates they signed (mutual TLS); reloaded when it changes")
	fs.BoolVar(&f.TLS.Diag, "diag-tls", false, "serve the diagnostics listener over TLS too, with --tls-cert (off: a kubelet's plain HTTP probes keep working)")
	fs.StringVar(&f.EtcdTLS.CAFile, "etcd-cacert", "", "`file` of PEM CA certificates that verify the --etcd-endpoints servers (default: the system's)")
	fs.StringVar(&f.EtcdTLS.CertFile, "etcd-cert", "", "`file` with the PEM client certificate presented to the --etcd-endpoints servers; with --etcd-key; reloaded when it changes")
	fs.StringVar(&f.EtcdTLS.KeyFile, "etcd-key", "", "`file` with the PEM private key of --etcd-cert, readable by its owner only (mode 0600)")
}

func (t tlsConfig) on() bool { return t.CertFile != "" }

func (t tlsConfig) files() tlsfiles.Files {
	return tlsfiles.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.ClientCAFile}
}

// given names the etcd TLS flags that are set.
func (e etcdTLSConfig) given() []string {
	var out []string
	for _, kv := range [][2]string{{"etcd-cacert", e.CAFile}, {"etcd-cert", e.CertFile}, {"etcd-key", e.KeyFile}} {
		if kv[1] != "" {
			out = append(out, kv[0])
		}
	}
	return out
}

func (e etcdTLSConfig) files() tlsfiles.Files {
	return tlsfiles.Files{Cert: e.CertFile, Key: e.KeyFile, CA: e.CAFile}
}

// validateTLS checks the TLS flags and loads their files once, so that a
// start with a bad file fails before it binds anything. Messages name
// flags and files, never what a key file holds.
func (f *serveConfig) validateTLS() []error {
	var errs []error
	t := f.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, errors.New("tls-cert: give tls-key too, the certificate's private key"))
	case t.KeyFile != "" && t.CertFile == "":
		errs = append(errs, errors.New("tls-key: give tls-cert too, the key's certificate"))
	case t.on():
		_, err := tlsfiles.Load(t.files(), tlsfiles.Options{})
		errs = append(errs, flagErrors(serveTLSFlags, err)...)
	}
	// With one of the pair given, the pair's own message says what is
	// missing.
	pairGiven := t.CertFile != "" || t.KeyFile != ""
	if t.ClientCAFile != "" && !pairGiven {
		errs = append(errs, errors.New("tls-client-ca: client certificates are verified by a TLS listener; give tls-cert and tls-key too"))
	}
	if t.Diag && !pairGiven {
		errs = append(errs, errors.New("diag-tls: the diagnostics listener serves the certificate of tls-cert; give tls-cert and tls-key too"))
	}
	e := f.EtcdTLS
	given := e.given()
	if len(given) == 0 {
		return errs
	}
	if len(f.EtcdEndpoints) == 0 {
		return append(errs, fmt.Errorf("%s: TLS to an external etcd cluster; give etcd-endpoints too (the embedded etcd is reached on a unix socket or etcd-listen)", strings.Join(given, ", ")))
	}
	for _, ep := range f.EtcdEndpoints {
		if strings.HasPrefix(strings.ToLower(ep), "http://") {
			errs = append(errs, fmt.Errorf("etcd-endpoints: %s is reached in plain text, without the TLS of %s; write https://", ep, strings.Join(given, ", ")))
		}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		return append(errs, errors.New("etcd-cert and etcd-key go together: the client certificate and its private key"))
	}
	_, err := tlsfiles.Load(e.files(), tlsfiles.Options{})
	return append(errs, flagErrors(etcdTLSFlags, err)...)
}

// flagErrors prefixes each problem of tlsfiles.Load with the flag of its
// file.
func flagErrors(flags map[tlsfiles.Part]string, err error) []error {
	if err == nil {
		return nil
	}
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	out := make([]error, 0, len(all))
	for _, e := range all {
		var fe *tlsfiles.FileError
		if errors.As(e, &fe) {
			e = fmt.Errorf("%s: %w", flags[fe.Part], e)
		}
		out = append(out, e)
	}
	return out
}

// loadTLS loads the serving files of f, with log for their reloads; nil
// when the listeners serve plain HTTP.
func loadTLS(f *serveConfig, log *slog.Logger) (*tlsfiles.Reloader, error) {
	if !f.TLS.on() {
		return nil, nil
	}
	r, err := tlsfiles.Load(f.TLS.files(), tlsfiles.Options{Logger: log.With("files", "tls")})
	if err != nil {
		return nil, usageError{errors.Join(flagErrors(serveTLSFlags, err)...)}
	}
	return r, nil
}

// serverTLS is a listener's TLS configuration: TLS 1.2 or later, HTTP/2
// offered, and, with clientCerts, a client certificate that the client CA
// bundle verifies required. Session tickets are then off: a resumed
// session would skip verifying the client's certificate against a CA
// bundle reloaded since.
func serverTLS(certs *tlsfiles.Reloader, clientCerts bool) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if clientCerts {
		base.ClientAuth = tls.RequireAndVerifyClientCert
		base.SessionTicketsDisabled = true
	}
	return certs.ServerConfig(base)
}

// etcdClientTLS is the TLS configuration of the client of an external etcd
// cluster, nil without etcd TLS flags; its certificate is reloaded until
// ctx ends (the CA bundle is read once).
func etcdClientTLS(ctx context.Context, f *serveConfig, log *slog.Logger) (*tls.Config, error) {
	e := f.EtcdTLS
	if len(e.given()) == 0 {
		return nil, nil
	}
	r, err := tlsfiles.Load(e.files(), tlsfiles.Options{Logger: log.With("files", "etcd")})
	if err != nil {
		return nil, usageError{errors.Join(flagErrors(etcdTLSFlags, err)...)}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: r.CAs()}
	if e.CertFile != "" {
		cfg.GetClientCertificate = r.GetClientCertificate
		go r.Run(ctx)
	}
	return cfg, nil
}

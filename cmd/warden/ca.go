package main

import (
	"crypto/x509"
	"fmt"
	"path/filepath"

	"github.com/wardenauthz/warden/sdk"
)

// caFlag reads --ca (or $WARDEN_CA): the CAs it holds, and the file's
// absolute path, which a profile keeps; nil and "" without it.
func caFlag(f *cmdFlags) (*x509.CertPool, string, error) {
	if *f.ca == "" {
		return nil, "", nil
	}
	path, err := filepath.Abs(*f.ca)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("--ca: %w", err)}
	}
	roots, err := sdk.LoadCAFile(path)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("--ca: %w", err)}
	}
	return roots, path, nil
}

// sessionCAs are the CAs a session's clients trust: --ca's over the
// profile's caFile; nil (the system's) without either.
func sessionCAs(f *cmdFlags, name string, p *sdk.Profile) (*x509.CertPool, error) {
	if *f.ca != "" {
		roots, _, err := caFlag(f)
		return roots, err
	}
	roots, err := p.RootCAs()
	if err != nil {
		return nil, fmt.Errorf("profile '%s': %w (give another with --ca FILE)", name, err)
	}
	return roots, nil
}

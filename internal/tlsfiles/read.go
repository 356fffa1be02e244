package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// Part names the file of Files that a problem is in.
type Part string

// The parts of Files.
const (
	PartCert Part = "cert"
	PartKey  Part = "key"
	PartCA   Part = "ca"
)

// FileError is a problem with one file. It names the file and never holds
// its bytes: a message about a private key must not leak the key.
type FileError struct {
	Part Part
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FileError) Unwrap() error { return e.Err }

// ErrKeyExposed says a private key file may be read by others than its
// owner.
var ErrKeyExposed = errors.New("a private key readable by group or others")

// CheckKeyFile refuses a private key file that group or others may read
// (mode & 0o077), as Warden writes its own secrets with mode 0600. The
// mode is the file's, following symbolic links, as mounted secrets are.
func CheckKeyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &FileError{Part: PartKey, Path: path, Err: pathCause(err)}
	}
	defer f.Close()
	return checkKeyMode(f, path)
}

func checkKeyMode(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return &FileError{Part: PartKey, Path: path, Err: pathCause(err)}
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return &FileError{Part: PartKey, Path: path, Err: fmt.Errorf("%w (mode %04o); run chmod 600 %s", ErrKeyExposed, perm, path)}
	}
	return nil
}

// readKeyFile reads a private key file whose mode CheckKeyFile accepts.
// The mode is that of the file opened, so a file swapped in after the
// check is never read unchecked.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Part: PartKey, Path: path, Err: pathCause(err)}
	}
	defer f.Close()
	if err := checkKeyMode(f, path); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, &FileError{Part: PartKey, Path: path, Err: pathCause(err)}
	}
	return data, nil
}

// ReadCAs reads a PEM bundle of CA certificates. A file that holds none,
// or a block that is no certificate, is an error.
func ReadCAs(path string) (*x509.CertPool, error) {
	data, err := readFile(PartCA, path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, &FileError{Part: PartCA, Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readFile reads a file, its error naming it once.
func readFile(part Part, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Part: part, Path: path, Err: pathCause(err)}
	}
	return data, nil
}

// pathCause is an os error without the path, which FileError adds.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseCerts parses every PEM block of data as a certificate.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		// pem.Decode stops at a block it cannot finish: a file caught
		// while it is written, which must not load as a shorter chain.
		return nil, fmt.Errorf("PEM block %d is incomplete", len(certs)+1)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in the file")
	}
	return certs, nil
}

// contents are the bytes of Files, as read together.
type contents struct {
	cert, key, ca []byte
}

// load reads and parses the files that are set, reporting every problem
// at once.
func (f Files) load() (*material, contents, error) {
	var c contents
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	var certOK, keyOK bool
	if f.Cert != "" {
		var err error
		if c.cert, err = readFile(PartCert, f.Cert); err != nil {
			fail(err)
		} else if _, err := parseCerts(c.cert); err != nil {
			fail(&FileError{Part: PartCert, Path: f.Cert, Err: err})
		} else {
			certOK = true
		}
	}
	if f.Key != "" {
		var err error
		if c.key, err = readKeyFile(f.Key); err != nil {
			fail(err)
		} else {
			keyOK = true
		}
	}
	m := &material{}
	if certOK && keyOK {
		pair, err := tls.X509KeyPair(c.cert, c.key)
		if err != nil {
			// The certificate parsed: what fails is the key, or the two
			// do not match. crypto/tls's messages hold no key bytes.
			fail(&FileError{Part: PartKey, Path: f.Key, Err: fmt.Errorf("%w (certificate %s)", err, f.Cert)})
		}
		m.cert = &pair
	}
	if f.CA != "" {
		var err error
		var certs []*x509.Certificate
		if c.ca, err = readFile(PartCA, f.CA); err != nil {
			fail(err)
		} else if certs, err = parseCerts(c.ca); err != nil {
			fail(&FileError{Part: PartCA, Path: f.CA, Err: err})
		} else {
			m.cas = x509.NewCertPool()
			for _, ca := range certs {
				m.cas.AddCert(ca)
			}
		}
	}
	if len(errs) > 0 {
		return nil, contents{}, errors.Join(errs...)
	}
	return m, c, nil
}

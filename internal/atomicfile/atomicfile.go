// Package atomicfile writes files that are either whole or absent, for the
// secrets Warden keeps on disk (the root init token, CLI profiles).
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode 0600, creating its directory with
// mode 0700: to a temporary file in that directory, synced, then renamed
// over path, and the directory synced, so a crash leaves the old file or
// the new one, never a part.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

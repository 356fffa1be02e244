package admin

import (
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenauthz/warden/sidecar/storage"
)

// TestRootTokenCleaner: the root init token's file goes once its record is
// consumed or gone, and stays while the token can still be used.
func TestRootTokenCleaner(t *testing.T) {
	t.Parallel()
	layout := storage.NewLayout("")
	const jti = "0123456789abcdef0123456789abcdef"
	key := layout.Init(testAcc, jti)
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"` + jti + `","profile":{"account":"` + testAcc + `"}}`))
	token := "eyJhbGciOiJIUzI1NiJ9." + claims + ".c2ln\n"
	fresh := storage.Record{Key: key, Value: []byte(storage.Encode(storage.InitRecord{JTI: jti})), Revision: 5}
	used := storage.Record{Key: key, Value: []byte(storage.Encode(storage.InitRecord{JTI: jti, Consumed: true})), Revision: 6}
	other := storage.Record{Key: layout.Init(testAcc, "ffffffffffffffffffffffffffffffff"), Deleted: true, Revision: 6}
	tests := []struct {
		name    string
		steps   func(c *RootTokenCleaner)
		removed bool
	}{
		{"listed unused", func(c *RootTokenCleaner) { c.Reset(5, []storage.Record{fresh}) }, false},
		{"another token used", func(c *RootTokenCleaner) { c.Reset(5, []storage.Record{fresh}); c.Advance(6, []storage.Record{other}) }, false},
		{"listed used", func(c *RootTokenCleaner) { c.Reset(6, []storage.Record{used}) }, true},
		{"not listed: expired", func(c *RootTokenCleaner) { c.Reset(6, nil) }, true},
		{"used after the list", func(c *RootTokenCleaner) { c.Reset(5, []storage.Record{fresh}); c.Advance(6, []storage.Record{used}) }, true},
		{"deleted after the list", func(c *RootTokenCleaner) {
			c.Reset(5, []storage.Record{fresh})
			c.Advance(6, []storage.Record{{Key: key, Deleted: true, Revision: 6}})
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, RootInitTokenFile)
			if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := NewRootTokenCleaner(dir, layout, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil || c == nil {
				t.Fatalf("cleaner %v, %v", c, err)
			}
			tc.steps(c)
			_, err = os.Stat(file)
			if removed := os.IsNotExist(err); removed != tc.removed {
				t.Fatalf("removed: %v, want %v (%v)", removed, tc.removed, err)
			}
		})
	}
	// No file: no cleaner. A file that is not a token: an error.
	if c, err := NewRootTokenCleaner(t.TempDir(), layout, nil); c != nil || err != nil {
		t.Fatalf("without a file: %v, %v", c, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, RootInitTokenFile), []byte("not a token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRootTokenCleaner(dir, layout, nil); err == nil {
		t.Fatal("a file without a token was taken")
	}
}

package admin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wardenauthz/warden/sidecar/storage"
)

// RootTokenCleaner removes the root init token's file once the token can no
// longer be used: enrolled (on any node) or expired. It follows the init
// records through the replica (it is a storage.Follower), so it sees a
// token consumed on another node as soon as this one does.
type RootTokenCleaner struct {
	file, key string
	log       *slog.Logger
	once      sync.Once
}

// NewRootTokenCleaner returns a cleaner of the root init token file in
// dataDir, or nil when there is no such file. A file that does not hold an
// init token of this layout is left alone.
func NewRootTokenCleaner(dataDir string, layout storage.Layout, log *slog.Logger) (*RootTokenCleaner, error) {
	file := filepath.Join(dataDir, RootInitTokenFile)
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the root init token: %w", err)
	}
	acc, jti, err := initTokenKey(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &RootTokenCleaner{file: file, key: layout.Init(acc, jti), log: log}, nil
}

// initTokenKey reads, without verifying it, the account and id of an init
// token minted by this package.
func initTokenKey(token string) (acc, jti string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", errors.New("it does not hold a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", errors.New("its token's claims are not base64url")
	}
	var claims struct {
		JTI     string `json:"jti"`
		Account string `json:"accountId"`
		Profile struct {
			Account string `json:"account"`
		} `json:"profile"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", "", errors.New("its token's claims are not a JSON object")
	}
	acc = claims.Profile.Account
	if acc == "" {
		acc = claims.Account
	}
	if acc == "" || claims.JTI == "" {
		return "", "", errors.New("its token has no account or jti")
	}
	return acc, claims.JTI, nil
}

// Reset implements storage.Follower: the file goes when the token's record
// is gone or consumed.
func (c *RootTokenCleaner) Reset(_ int64, records []storage.Record) {
	for _, r := range records {
		if r.Key == c.key {
			c.check(r)
			return
		}
	}
	c.remove("expired")
}

// Advance implements storage.Follower.
func (c *RootTokenCleaner) Advance(_ int64, changes []storage.Record) {
	for _, r := range changes {
		if r.Key == c.key {
			c.check(r)
		}
	}
}

func (c *RootTokenCleaner) check(r storage.Record) {
	if r.Deleted {
		c.remove("expired")
		return
	}
	var rec storage.InitRecord
	if err := storage.Decode(r.Key, r.Value, &rec); err == nil && rec.Consumed {
		c.remove("used")
	}
}

func (c *RootTokenCleaner) remove(why string) {
	c.once.Do(func() {
		err := os.Remove(c.file)
		switch {
		case err == nil:
			c.log.Info("removed the root init token's file: the token was "+why, "file", c.file)
		case !errors.Is(err, os.ErrNotExist):
			c.log.Warn("the root init token was "+why+" but its file could not be removed", "file", c.file, "error", err.Error())
		}
	})
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wardenauthz/warden/bench/internal/opabench"
)

// opa is a running `opa run --server` with the policy and data.
type opa struct {
	*server
	addr string
}

// startOPA runs OPA's server, built from the version this module pins,
// with the policy, the data exported from Warden's model, and the io_jwt
// cache on. Request logs are off (--log-level error), as Warden logs no
// checks, and the store is optimized for reads.
func startOPA(ctx context.Context, bin, dir string, m opabench.Model) (*opa, error) {
	data, err := m.Data()
	if err != nil {
		return nil, err
	}
	files := map[string]any{
		"data.json":   data,
		"config.json": map[string]any{"caching": opabench.CachingConfig()},
	}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(opabench.Policy), 0o600); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := start("opa", dir, bin, "run", "--server", "--addr", addr,
		"--log-level", "error", "--skip-version-check", "--optimize-store-for-read-speed",
		"--config-file", filepath.Join(dir, "config.json"),
		filepath.Join(dir, "policy.rego"), filepath.Join(dir, "data.json"))
	if err != nil {
		return nil, err
	}
	if err := srv.waitReady(ctx, "http://"+addr+"/health", time.Minute); err != nil {
		srv.stop()
		return nil, fmt.Errorf("OPA: %w", err)
	}
	return &opa{server: srv, addr: addr}, nil
}

package sdk

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/sdk/model"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RevisionHeader carries the store revision a successful admin write
// produced.
const RevisionHeader = model.RevisionHeader

// TokenSource returns the bearer token for the next request.
type TokenSource func(ctx context.Context) (string, error)

// StaticToken is a TokenSource that always returns token.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// Config configures a Client. The zero value of each field but BaseURL is
// its default.
type Config struct {
	// BaseURL is the Warden deployment, e.g. http://127.0.0.1:7800.
	BaseURL string
	// Account is the account the admin calls act in.
	Account string
	// Token authenticates requests; none is sent when it is nil.
	Token TokenSource
	// HTTPClient defaults to a client with a 30s timeout.
	HTTPClient *http.Client
	// RootCAs are the CAs trusted for an https:// BaseURL (LoadCAFile
	// reads them); nil trusts the system's. The default HTTPClient uses
	// them: an HTTPClient given carries its own, so giving both is an
	// error.
	RootCAs *x509.CertPool
	// Retries is how many times an idempotent call (GET, DELETE, checks)
	// is tried again after a connection failure or a 502, 503 or 504.
	// Default 2; negative disables retries.
	Retries int
	// RetryWait is the wait before the first retry, doubled after each.
	// Default 200ms.
	RetryWait time.Duration
}

// Client calls Warden's admin and check APIs. It is safe for concurrent
// use.
type Client struct {
	cfg Config
}

// NewClient returns a client for the deployment at cfg.BaseURL.
func NewClient(cfg Config) (*Client, error) {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("sdk: base URL %q must start with http:// or https://", cfg.BaseURL)
	}
	switch {
	case cfg.HTTPClient != nil && cfg.RootCAs != nil:
		return nil, errors.New("sdk: give RootCAs or HTTPClient, not both: an HTTPClient trusts the CAs of its own transport")
	case cfg.HTTPClient == nil:
		cfg.HTTPClient = defaultHTTPClient(cfg.RootCAs)
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 200 * time.Millisecond
	}
	return &Client{cfg: cfg}, nil
}

// BaseURL returns the deployment the client calls.
func (c *Client) BaseURL() string { return c.cfg.BaseURL }

// Account returns the account the admin calls act in.
func (c *Client) Account() string { return c.cfg.Account }

// Error is an error answer of Warden: its HTTP status and message.
type Error struct {
	Status  int
	Message string
	// Method and Path name the request that failed.
	Method, Path string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// ConnectError says the deployment could not be reached at all.
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot reach Warden at %s: %v", e.URL, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// response is a successful answer.
type response struct {
	body     []byte
	revision int64
}

// do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to ignore it).
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int64, error) {
	return c.doWith(ctx, c.cfg.Token, method, path, in, out, method == http.MethodGet || method == http.MethodDelete)
}

func (c *Client) doWith(ctx context.Context, tokens TokenSource, method, path string, in, out any, idempotent bool) (int64, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("encoding the request: %w", err)
		}
	}
	wait := c.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, tokens, method, path, body)
		retry := idempotent && attempt < c.cfg.Retries && retryable(err)
		if !retry {
			if err != nil {
				return 0, err
			}
			if out != nil && len(resp.body) > 0 {
				if err := json.Unmarshal(resp.body, out); err != nil {
					return 0, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
				}
			}
			return resp.revision, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func retryable(err error) bool {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return true
	}
	switch StatusOf(err) {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (c *Client) once(ctx context.Context, tokens TokenSource, method, path string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tokens != nil {
		tok, err := tokens(ctx)
		if err != nil {
			return response{}, fmt.Errorf("getting a token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{}, &ConnectError{URL: c.cfg.BaseURL, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return response{}, &ConnectError{URL: c.cfg.BaseURL, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode, Method: method, Path: path}
		var wire struct{ Message string }
		if json.Unmarshal(data, &wire) == nil && wire.Message != "" {
			e.Message = wire.Message
		} else {
			e.Message = strings.TrimSpace(http.StatusText(resp.StatusCode))
		}
		return response{}, e
	}
	rev, _ := strconv.ParseInt(resp.Header.Get(RevisionHeader), 10, 64)
	return response{body: data, revision: rev}, nil
}

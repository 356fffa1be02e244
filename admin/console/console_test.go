package console_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/admin/console"
)

// TestHandler: the page and its files are served with the strict headers,
// with their types; anything else under /ui/ is 404, and /ui goes to /ui/.
func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	console.Register(mux)
	for _, tc := range []struct {
		path   string
		status int
		ctype  string
	}{
		{"/ui/", 200, "text/html; charset=utf-8"},
		{"/ui/index.html", 200, "text/html; charset=utf-8"},
		{"/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"/ui/console.css", 200, "text/css; charset=utf-8"},
		{"/ui/nope.js", 404, ""},
		{"/ui/../console.go", 404, ""},
		{"/ui/.hidden", 404, ""},
		{"/ui/static/app.js", 404, ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.status && !(tc.status == 404 && (rec.Code == 301 || rec.Code == 307)) {
			t.Errorf("GET %s: %d; want %d", tc.path, rec.Code, tc.status)
			continue
		}
		if rec.Code != 200 {
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q; want %q", tc.path, got, tc.ctype)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": console.SecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := rec.Header().Get(h); got != want {
				t.Errorf("GET %s: %s %q; want %q", tc.path, h, got, want)
			}
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/ui", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q; want 301 to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/ui/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d; want 405", rec.Code)
	}
}

// TestPolicy: the policy allows nothing from another origin and nothing
// inline, and frames nothing.
func TestPolicy(t *testing.T) {
	p := console.SecurityPolicy
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(p, want) {
			t.Errorf("the policy %q lacks %q", p, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(p, bad) {
			t.Errorf("the policy %q allows %q", p, bad)
		}
	}
}

// TestAssetsSelfContained: no file of the console loads anything from
// another origin, holds an inline script or style, or writes markup from
// strings, so that the console works air-gapped and under its policy.
func TestAssetsSelfContained(t *testing.T) {
	var files int
	err := filepath.WalkDir("static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(data)
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`),
			regexp.MustCompile(`(?i)@import\s+url\(\s*["']?(https?:)?//`),
			regexp.MustCompile(`\bimport\s*\(?\s*["'](https?:)?//`),
			regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<\s]`),
			regexp.MustCompile(`(?i)\sstyle\s*=\s*["']`),
			regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*["']`),
			regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write`),
			regexp.MustCompile(`localStorage|sessionStorage|document\.cookie`),
		} {
			if m := re.FindString(src); m != "" {
				t.Errorf("%s holds %q", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("%d files in static/", files)
	}
}

package routes

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// CleanPath turns a request URI (path and query, as a proxy passes it on)
// into the path a table matches, refusing what an upstream could read
// otherwise than the table would:
//   - the path is percent-decoded exactly once;
//   - an encoded '/' (%2F), a '.' or '..' segment, an empty segment (//),
//     a ';', a backslash or a control character is refused.
//
// The query is dropped: tables match paths.
func CleanPath(uri string) (string, error) {
	if uri == "" {
		return "", errors.New("the original URI is empty")
	}
	raw, _, _ := strings.Cut(uri, "?")
	raw, _, _ = strings.Cut(raw, "#")
	if !strings.HasPrefix(raw, "/") {
		if u, err := url.Parse(raw); err == nil && u.IsAbs() {
			raw = u.EscapedPath() // an absolute URI: its path
		}
	}
	if !strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("the original URI %q does not start with '/'", cut(uri))
	}
	if strings.Contains(strings.ToLower(raw), "%2f") {
		return "", errors.New("the path has an encoded '/' (%2F)")
	}
	path, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("the path is not validly percent-encoded: %w", err)
	}
	for rest := path[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return "", fmt.Errorf("the path has a %q segment", seg)
		case seg == "" && more:
			return "", errors.New("the path has an empty segment (//)")
		}
		if !more {
			break
		}
		rest = after
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == ';':
			return "", errors.New("the path has a ';'")
		case c == '\\':
			return "", errors.New("the path has a backslash")
		case c < 0x20 || c == 0x7f:
			return "", errors.New("the path has a control character")
		}
	}
	return path, nil
}

// cut shortens a request's text for a message.
func cut(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "…"
	}
	return s
}

package signin

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
)

// ErrNotLocal refuses a return path that could leave shipbot.
var ErrNotLocal = errors.New("not a path on shipbot")

// LocalPath checks that p is a path on this site, with an optional query,
// so that sending a browser there after sign-in cannot send it elsewhere.
// It refuses absolute URLs, scheme-relative ones (//host), backslashes,
// which browsers read as slashes (/\host), and control characters.
func LocalPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') ||
		strings.ContainsFunc(p, unicode.IsControl) || len(p) > 2048 {
		return "", ErrNotLocal
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", ErrNotLocal
	}
	return p, nil
}

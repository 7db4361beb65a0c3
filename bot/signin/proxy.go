package signin

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// Proxy believes the user headers that an authenticating reverse proxy
// (oauth2-proxy against GitLab, or any SSO proxy) sets, and only on
// requests from the proxy's own addresses. It is the explicit alternative
// to SignIn, for sites that already run such a proxy; the proxy must
// overwrite these headers on what clients send.
type Proxy struct {
	UserHeader  string // X-Forwarded-User when empty
	EmailHeader string // X-Forwarded-Email when empty
	// Trusted are the proxy's addresses. Requests from any other peer are
	// refused whatever their headers say, and with none set every request
	// is: anyone who can reach shipbot can send these headers.
	Trusted []netip.Prefix
}

var _ Identifier = Proxy{}

// Identify reads the proxy's headers. The person has no UserID: the
// caller resolves the username or email to a GitLab user.
func (p Proxy) Identify(r *http.Request) (Person, error) {
	if !p.trusted(r.RemoteAddr) {
		return Person{}, fmt.Errorf("%w: request did not come through the authenticating proxy", ErrNoPerson)
	}
	user := strings.TrimSpace(r.Header.Get(cmp.Or(p.UserHeader, "X-Forwarded-User")))
	email := strings.TrimSpace(r.Header.Get(cmp.Or(p.EmailHeader, "X-Forwarded-Email")))
	if user == "" && email == "" {
		return Person{}, fmt.Errorf("%w: no user header from the authenticating proxy", ErrNoPerson)
	}
	return Person{Username: user, Email: email}, nil
}

// Challenge says to come through the proxy: shipbot cannot send anyone there.
func (p Proxy) Challenge(c echo.Context, _ string) error {
	return writePage(c, http.StatusUnauthorized, "shipbot cannot tell who you are",
		"Open this page through your company login and try again.")
}

func (p Proxy) trusted(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, pr := range p.Trusted {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

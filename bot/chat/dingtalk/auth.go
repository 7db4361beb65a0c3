package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// ErrUnauthenticated means shipbot cannot tell who is acting.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator says who sent a confirmation. A robot's button carries no
// identity, so the person must be established by the request itself.
type Authenticator interface {
	Authenticate(r *http.Request) (ops.Actor, error)
}

// Identities maps what the proxy says about a person to their GitLab
// account; *authz.Resolver does, from shipbot.yaml's users and GitLab.
// Refusals, e.g. a blocked account, wrap ops.ErrForbidden.
type Identities interface {
	Resolve(ctx context.Context, id authz.Identity) (ops.Actor, error)
}

var _ Identities = (*authz.Resolver)(nil)

// ProxyAuth believes the user headers that an authenticating reverse proxy
// (oauth2-proxy against GitLab, or any SSO proxy) sets on requests to
// /chat/actions/. It is only as safe as the rule that nothing but the proxy
// can reach shipbot's /chat/actions/: set Trusted, or enforce it in the
// network, and have the proxy strip these headers from what clients send.
type ProxyAuth struct {
	UserHeader  string // X-Forwarded-User when empty
	EmailHeader string // X-Forwarded-Email when empty; passed to Identities
	// Trusted, when set, are the proxy's addresses: requests from any other
	// peer are refused whatever their headers say.
	Trusted []netip.Prefix
	// Identities resolves the user, as a GitLab username when the proxy
	// logs people in with GitLab, else by email. When nil the user header
	// is taken as the GitLab username as it is.
	Identities Identities
}

var _ Authenticator = ProxyAuth{}

// Authenticate reads the proxy's headers. A request without them wraps
// ErrUnauthenticated; errors from Identities are returned as they are.
func (p ProxyAuth) Authenticate(r *http.Request) (ops.Actor, error) {
	if len(p.Trusted) > 0 && !p.trusted(r.RemoteAddr) {
		return ops.Actor{}, fmt.Errorf("%w: request did not come through the authenticating proxy", ErrUnauthenticated)
	}
	user := strings.TrimSpace(r.Header.Get(orDefault(p.UserHeader, "X-Forwarded-User")))
	email := strings.TrimSpace(r.Header.Get(orDefault(p.EmailHeader, "X-Forwarded-Email")))
	if user == "" && email == "" {
		return ops.Actor{}, fmt.Errorf("%w: no user header from the authenticating proxy", ErrUnauthenticated)
	}
	if p.Identities == nil {
		if user == "" {
			return ops.Actor{}, fmt.Errorf("%w: the proxy named no user", ErrUnauthenticated)
		}
		return ops.Actor{Username: user, Surface: release.SurfaceDingTalk}, nil
	}
	return p.Identities.Resolve(r.Context(), authz.Identity{Surface: release.SurfaceDingTalk, Username: user, Email: email})
}

func (p ProxyAuth) trusted(remote string) bool {
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

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

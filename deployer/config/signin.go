package config

import (
	"net/netip"
	"slices"
	"time"
)

// Identities: how a web page learns who is in front of the browser.
const (
	// IdentityGitLab, the default, signs people in with GitLab (the signin section).
	IdentityGitLab = "gitlab"
	// IdentityProxyHeader believes an authenticating proxy's X-Forwarded-User,
	// from trustedProxies only.
	IdentityProxyHeader = "proxyHeader"
)

// SignIn configures sign-in with GitLab for shipbot's web pages: DingTalk's
// confirmation pages and the dashboard's access: gitlab. It is a GitLab
// application whose redirect URI is publicURL + /auth/gitlab/callback,
// with the scope read_user.
type SignIn struct {
	ClientID     string `yaml:"clientID"`     // the application's ID
	ClientSecret Secret `yaml:"clientSecret"` // the application's secret
	// SessionKey signs the session cookies; at least 32 bytes. Changing it
	// signs everyone out.
	SessionKey Secret   `yaml:"sessionKey"`
	SessionTTL Duration `yaml:"sessionTTL"` // how long a sign-in lasts; 8h when unset
}

// CallbackPath is where GitLab sends people back after they sign in; the
// GitLab application's redirect URI is publicURL followed by it.
const CallbackPath = "/auth/gitlab/callback"

// minSessionKey is the shortest session key accepted, as for linkSecret.
const minSessionKey = minSecretLen

func (s *SignIn) setDefaults() {
	if s.SessionTTL.Duration == 0 {
		s.SessionTTL.Duration = 8 * time.Hour
	}
}

func (s *SignIn) validate(v *validator, path []any, publicURL string) {
	if publicURL == "" {
		v.failf(path, "needs publicURL: GitLab sends people back to publicURL%s after they sign in", CallbackPath)
	}
	if s.ClientID == "" {
		v.failf(at(path, "clientID"), "required: the Application ID of the GitLab application (scope read_user, redirect URI publicURL%s)", CallbackPath)
	}
	if s.ClientSecret.IsZero() {
		v.failf(at(path, "clientSecret"), "required: the GitLab application's secret; use ${ENV_VAR} to keep it out of the file")
	}
	switch {
	case s.SessionKey.IsZero():
		v.failf(at(path, "sessionKey"), "required: a random secret of at least %d bytes that signs session cookies (openssl rand -hex 32)", minSessionKey)
	case len(s.SessionKey.Value()) < minSessionKey:
		v.failf(at(path, "sessionKey"), "is %d bytes; use at least %d random bytes", len(s.SessionKey.Value()), minSessionKey)
	}
	if s.SessionTTL.Duration < time.Minute || s.SessionTTL.Duration > 7*24*time.Hour {
		v.failf(at(path, "sessionTTL"), "must be from 1m to 168h, got %s", s.SessionTTL.Duration)
	}
}

// identity is how a page that people use learns who they are: its
// identity and trustedProxies keys, as dingtalk and dashboard have them.
type identity struct {
	Identity       string
	TrustedProxies []string
}

// validateIdentity checks a page's identity against the rest of the file:
// sign-in with GitLab needs the signin section, and the proxy header is
// believed only from trustedProxies, which must then be set. Without them
// anyone who reaches shipbot could name anyone in X-Forwarded-User.
func validateIdentity(v *validator, path []any, id identity, signIn bool) {
	switch id.Identity {
	case IdentityGitLab:
		if !signIn {
			v.failf(at(path, "identity"), "gitlab (the default) needs a signin section, so that people sign in with GitLab; "+
				"or set identity: proxyHeader with trustedProxies to believe an authenticating proxy")
		}
		if len(id.TrustedProxies) > 0 {
			v.failf(at(path, "trustedProxies"), "only applies with identity: proxyHeader")
		}
	case IdentityProxyHeader:
		if len(id.TrustedProxies) == 0 {
			v.failf(at(path, "trustedProxies"), "required with identity: proxyHeader: the addresses (CIDR) of the authenticating proxy; "+
				"without them anyone who reaches shipbot could send X-Forwarded-User and act as anyone")
		}
	default:
		v.failf(at(path, "identity"), "%q is not one of %s, %s", id.Identity, IdentityGitLab, IdentityProxyHeader)
	}
	for i, cidr := range id.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			v.failf(at(path, "trustedProxies", i), "%q is not a CIDR such as 10.0.0.0/8", cidr)
		}
	}
}

// prefixes parses trustedProxies, which validation has checked.
func prefixes(cidrs []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return slices.Clip(out)
}

package config

import (
	"net/netip"
	"slices"
)

// Dashboard access modes: who may read the dashboard at /.
const (
	DashboardOpen  = "open"  // anyone who can reach shipbot, e.g. behind a VPN or an authenticating proxy
	DashboardToken = "token" // a bearer token, or a cookie set by visiting /?token=<token> once
	DashboardBasic = "basic" // HTTP basic auth with one username and password
	// DashboardGitLab lets in GitLab users who are members of an app's
	// project, as identity says: signed in with GitLab, or named by a proxy.
	DashboardGitLab = "gitlab"
)

var dashboardAccess = []string{DashboardOpen, DashboardToken, DashboardBasic, DashboardGitLab}

// Dashboard configures the read-only web dashboard at /. It takes no
// actions, so whoever may read it may change nothing.
type Dashboard struct {
	// Access is open, token, basic or gitlab; required, so that opening the
	// dashboard to everyone is a decision written down.
	Access   string `yaml:"access"`
	Token    Secret `yaml:"token"`    // access: token
	Username string `yaml:"username"` // access: basic
	Password Secret `yaml:"password"` // access: basic
	// Identity is how access: gitlab learns who reads: gitlab (the
	// default) signs them in with GitLab, proxyHeader believes an
	// authenticating proxy at TrustedProxies.
	Identity       string   `yaml:"identity"`
	TrustedProxies []string `yaml:"trustedProxies"`
}

// Proxies are TrustedProxies, parsed.
func (d *Dashboard) Proxies() []netip.Prefix { return prefixes(d.TrustedProxies) }

// minDashboardToken is the shortest token accepted: a guessable token on a
// page that lists who deployed what is worse than none, as it looks safe.
const minDashboardToken = minSecretLen

func (d *Dashboard) validate(v *validator, path []any, c *Config) {
	if !slices.Contains(dashboardAccess, d.Access) {
		v.failf(at(path, "access"), "%q is not one of open, token, basic, gitlab", d.Access)
		return
	}
	only := func(key, mode string, set bool) {
		if set && d.Access != mode {
			v.failf(at(path, key), "only applies with access: %s", mode)
		}
	}
	only("token", DashboardToken, !d.Token.IsZero())
	only("username", DashboardBasic, d.Username != "")
	only("password", DashboardBasic, !d.Password.IsZero())
	only("identity", DashboardGitLab, d.Identity != "")
	only("trustedProxies", DashboardGitLab, len(d.TrustedProxies) > 0)
	switch d.Access {
	case DashboardToken:
		switch {
		case d.Token.IsZero():
			v.failf(at(path, "token"), "required with access: token; use ${ENV_VAR} to keep it out of the file")
		case len(d.Token.Value()) < minDashboardToken:
			// The value is not echoed: it is a credential even when too short.
			v.failf(at(path, "token"), "is %d bytes; use at least %d random bytes", len(d.Token.Value()), minDashboardToken)
		}
	case DashboardBasic:
		if d.Username == "" {
			v.failf(at(path, "username"), "required with access: basic")
		}
		if d.Password.IsZero() {
			v.failf(at(path, "password"), "required with access: basic; use ${ENV_VAR} to keep it out of the file")
		}
	case DashboardGitLab:
		validateIdentity(v, path, identity{d.Identity, d.TrustedProxies}, c.SignIn != nil)
		if c.GitLab.Token.IsZero() {
			v.failf(at(path, "access"), "gitlab needs gitlab.token: shipbot asks GitLab whether a reader is a member of an app's project")
		}
	}
}

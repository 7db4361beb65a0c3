package serve

import (
	"net/netip"

	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/config"
)

// buildSignIn sets up sign-in with GitLab when shipbot.yaml has a signin
// section. It needs nothing but the config: the person's own token asks
// GitLab who they are.
func (m *Main) buildSignIn() error {
	c := m.Config.SignIn
	if c == nil {
		return nil
	}
	var err error
	m.signin, err = signin.New(signin.Options{
		GitLabURL: m.Config.GitLab.BaseURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Value(),
		PublicURL: m.Config.PublicURL, SessionKey: []byte(c.SessionKey.Value()), SessionTTL: c.SessionTTL.Duration,
		Now: m.Now, Log: m.Log.With("surface", "signin"),
	})
	return err
}

// identity is how a page learns who people are, as its identity key says:
// sign-in with GitLab, or a proxy's header from trusted addresses only.
// It is nil when sign-in is wanted but off, which the config refuses.
func (m *Main) identity(kind string, trusted []netip.Prefix) signin.Identifier {
	if kind == config.IdentityProxyHeader {
		return signin.Proxy{Trusted: trusted}
	}
	if m.signin == nil {
		return nil
	}
	return m.signin
}

package signin_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/shipbot/shipbot/bot/signin"
)

// The attack: anyone who reaches shipbot sends X-Forwarded-User naming a
// maintainer. A Proxy believes the header only from its trusted
// addresses, and with none it believes nobody.
func TestProxyBelievesOnlyTrustedPeers(t *testing.T) {
	forged := func(remote string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("X-Forwarded-User", "alice")
		req.Header.Set("X-Forwarded-For", "10.0.0.1") // says nothing about the peer
		req.RemoteAddr = remote
		return req
	}
	for name, p := range map[string]signin.Proxy{
		"no trusted proxies":        {},
		"another network's proxies": {Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		for _, remote := range []string{"192.0.2.1:4000", "[2001:db8::1]:4000", "not an address"} {
			if got, err := p.Identify(forged(remote)); !errors.Is(err, signin.ErrNoPerson) {
				t.Errorf("%s, from %s: believed %+v (%v)", name, remote, got, err)
			}
		}
	}
	p := signin.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, remote := range []string{"10.1.2.3:4000", "[::ffff:10.1.2.3]:4000"} {
		if got, err := p.Identify(forged(remote)); err != nil || got.Username != "alice" || got.UserID != 0 {
			t.Errorf("from the proxy at %s: %+v, %v", remote, got, err)
		}
	}
	req := forged("10.1.2.3:4000")
	req.Header.Del("X-Forwarded-User")
	if _, err := p.Identify(req); !errors.Is(err, signin.ErrNoPerson) {
		t.Errorf("the proxy named nobody: %v", err)
	}
}

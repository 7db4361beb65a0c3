package dashboard_test

import (
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// gitlabRig is the dashboard with access: gitlab, signing people in with a
// fake GitLab where alice (10) reports on shop/web and erin (14) is no
// member of it.
func gitlabRig(t *testing.T) (*rig, *fakegitlab.Server) {
	t.Helper()
	gl := fakegitlab.New(t, "shipbot-token")
	gl.SetUser(fakegitlab.User{ID: 10, Username: "alice"})
	gl.SetUser(fakegitlab.User{ID: 14, Username: "erin"})
	gl.SetProjectPath(9, "shop/web")
	gl.SetMember(9, 10, int(gitlab.Reporter))
	client, err := gitlab.New(gl.URL(), "shipbot-token", gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	r := newRigWith(t, func(e *echo.Echo, base string) dashboard.Access {
		gl.SetOAuthApp(fakegitlab.OAuthApp{ClientID: "app", ClientSecret: "app-secret", RedirectURI: base + signin.CallbackPath, Scopes: []string{"read_user"}})
		s, err := signin.New(signin.Options{GitLabURL: gl.URL(), ClientID: "app", ClientSecret: "app-secret", PublicURL: base,
			SessionKey: []byte(strings.Repeat("k", 32)), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		s.Register(e)
		z := authz.New(authz.Options{GitLab: client, Log: log})
		return dashboard.Access{Mode: dashboard.AccessGitLab, Identity: s, Readers: authz.Readers{Authorizer: z, Projects: []string{"shop/web"}}}
	})
	return r, gl
}

// A browser without a session is sent to sign in with GitLab and comes
// back to the page it asked for; a member of an app's project reads it,
// someone GitLab knows but who is no member is refused.
func TestGitLabAccess(t *testing.T) {
	r, gl := gitlabRig(t)
	rel := r.seed(t)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/releases/" + rel.ID} {
		code, h, body := get(t, noFollow, r.srv.URL+path)
		loc, _ := url.Parse(h.Get("Location"))
		if code != http.StatusFound || loc == nil || loc.Path != "/oauth/authorize" || strings.Contains(body, "matrix") {
			t.Errorf("GET %s signed out: %d to %v, want GitLab's authorize page", path, code, loc)
		}
	}

	gl.SignInAs(10)
	jar, _ := cookiejar.New(nil)
	var hops []string
	alice := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		hops = append(hops, req.URL.Path)
		return nil
	}}
	code, _, body := get(t, alice, r.srv.URL+"/releases/"+rel.ID)
	if code != http.StatusOK || !strings.Contains(body, "pause requested") {
		t.Fatalf("alice after signing in: %d via %v\n%s", code, hops, body)
	}
	if len(hops) != 3 || hops[2] != "/releases/"+rel.ID {
		t.Errorf("redirects %v, want GitLab, the callback, the release", hops)
	}
	if code, _, body := get(t, alice, r.srv.URL+"/"); code != http.StatusOK || !strings.Contains(body, `id="matrix"`) {
		t.Errorf("alice's overview: %d", code)
	}
	// A session cookie changed by hand is nobody's.
	u, _ := url.Parse(r.srv.URL)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == signin.SessionCookie {
			jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: strings.Replace(ck.Value, ".", ".x", 1), Path: "/"}})
		}
	}
	if code, h, _ := get(t, noFollowWith(jar), r.srv.URL+"/"); code != http.StatusFound || !strings.Contains(h.Get("Location"), "/oauth/authorize") {
		t.Errorf("tampered session: %d to %q, want signing in again", code, h.Get("Location"))
	}

	gl.SignInAs(14)
	jar2, _ := cookiejar.New(nil)
	code, _, body = get(t, &http.Client{Jar: jar2}, r.srv.URL+"/")
	if code != http.StatusForbidden || !strings.Contains(body, "erin is not a Reporter or above on any project shipbot deploys") || strings.Contains(body, "matrix") {
		t.Errorf("erin: %d\n%s", code, body)
	}
}

func noFollowWith(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

package signin_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	clientID     = "shipbot-app"
	clientSecret = "shipbot-app-secret"
	sessionKey   = "0123456789abcdef0123456789abcdef"
)

// rig is shipbot's sign-in on a real HTTP server, against a fake GitLab
// where alice (10) is signed in, and a browser with a cookie jar. /private
// answers with who the session says is there, or challenges.
type rig struct {
	t       testing.TB
	gitlab  *fakegitlab.Server
	srv     *httptest.Server
	signin  *signin.SignIn
	clock   *fakeclock.Clock
	browser *http.Client
	hops    []*url.URL // every URL the browser was redirected to
}

func newRig(t testing.TB) *rig {
	gl := fakegitlab.New(t, "shipbot-token")
	gl.SetUser(fakegitlab.User{ID: 10, Username: "alice", Name: "Alice Liddell"})
	gl.SetUser(fakegitlab.User{ID: 12, Username: "mallory", State: "blocked"})
	gl.SignInAs(10)
	e := echo.New()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	gl.SetOAuthApp(fakegitlab.OAuthApp{ClientID: clientID, ClientSecret: clientSecret,
		RedirectURI: srv.URL + signin.CallbackPath, Scopes: []string{"read_user"}})
	clock := fakeclock.New(t0)
	s, err := signin.New(signin.Options{GitLabURL: gl.URL(), ClientID: clientID, ClientSecret: clientSecret,
		PublicURL: srv.URL, SessionKey: []byte(sessionKey), Now: clock.Now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Register(e)
	e.GET("/private", func(c echo.Context) error {
		p, err := s.Identify(c.Request())
		if errors.Is(err, signin.ErrNoPerson) {
			return s.Challenge(c, c.Request().URL.RequestURI())
		}
		return c.String(http.StatusOK, fmt.Sprintf("hello %s (%d, %s)", p.Username, p.UserID, p.Name))
	})
	jar, _ := cookiejar.New(nil)
	r := &rig{t: t, gitlab: gl, srv: srv, signin: s, clock: clock}
	r.browser = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		r.hops = append(r.hops, req.URL)
		return nil
	}}
	return r
}

// get fetches path like a browser, following redirects.
func (r *rig) get(path string) (int, string) {
	r.t.Helper()
	r.hops = nil
	resp, err := r.browser.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// noFollow fetches one URL without following its redirect, with the jar.
func (r *rig) noFollow(u string) *http.Response {
	r.t.Helper()
	c := *r.browser
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (r *rig) sessionCookie() *http.Cookie {
	u, _ := url.Parse(r.srv.URL + "/")
	for _, c := range r.browser.Jar.Cookies(u) {
		if c.Name == signin.SessionCookie {
			return c
		}
	}
	return nil
}

// A browser without a session goes to GitLab with a PKCE challenge and a
// state, comes back with a code that shipbot redeems with the verifier,
// and lands on the page it wanted, signed in as the person GitLab names.
func TestSignInWithGitLab(t *testing.T) {
	r := newRig(t)
	code, body := r.get("/private?tab=1")
	if code != http.StatusOK || body != "hello alice (10, Alice Liddell)" {
		t.Fatalf("after sign-in: %d %q", code, body)
	}
	if len(r.hops) != 3 {
		t.Fatalf("redirects %v, want GitLab, the callback, the page", r.hops)
	}
	auth, cb, back := r.hops[0], r.hops[1], r.hops[2]
	q := auth.Query()
	if auth.Path != "/oauth/authorize" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
		len(q.Get("state")) < 20 || q.Get("scope") != "read_user" || q.Get("client_id") != clientID ||
		q.Get("redirect_uri") != r.srv.URL+signin.CallbackPath || q.Get("response_type") != "code" {
		t.Errorf("authorize request %s", auth)
	}
	if cb.Path != signin.CallbackPath || cb.Query().Get("state") != q.Get("state") || back.RequestURI() != "/private?tab=1" {
		t.Errorf("callback %s, then %s", cb, back)
	}
	if d := r.gitlab.OAuthDenials(); len(d) != 0 {
		t.Errorf("GitLab refused the token request: %q", d)
	}
	// The session now serves without GitLab.
	calls := r.gitlab.Calls()
	if code, body := r.get("/private"); code != http.StatusOK || !strings.HasPrefix(body, "hello alice") || len(r.hops) != 0 || r.gitlab.Calls() != calls {
		t.Errorf("signed in: %d %q after %v", code, body, r.hops)
	}
}

// The session cookie is HttpOnly, SameSite=Lax and expires; Secure
// follows the public URL's scheme.
func TestSessionCookieAttributes(t *testing.T) {
	r := newRig(t)
	var setCookies []string
	r.browser.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			setCookies = append(setCookies, resp.Header.Values("Set-Cookie")...)
		}
		return resp, err
	})
	r.get("/private")
	var session, state string
	for _, c := range setCookies {
		switch {
		case strings.HasPrefix(c, signin.SessionCookie+"="):
			session = c
		case strings.HasPrefix(c, signin.StateCookie+"=") && state == "":
			state = c
		}
	}
	for _, want := range []string{"Path=/;", "HttpOnly", "SameSite=Lax", "Max-Age=28800", "Expires="} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	for _, want := range []string{"Path=" + signin.CallbackPath, "HttpOnly", "SameSite=Lax", "Max-Age=600"} {
		if !strings.Contains(state, want) {
			t.Errorf("state cookie %q lacks %s", state, want)
		}
	}
	if strings.Contains(session+state, "Secure") {
		t.Errorf("Secure on an http public URL: %q %q", session, state)
	}
	// Over https the browser must not send them in the clear.
	s, err := signin.New(signin.Options{GitLabURL: r.gitlab.URL(), ClientID: clientID, ClientSecret: clientSecret,
		PublicURL: "https://shipbot.example", SessionKey: []byte(sessionKey), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	s.Register(e)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, signin.LoginPath+"?return=/", nil))
	if c := w.Header().Get("Set-Cookie"); !strings.Contains(c, "; Secure") {
		t.Errorf("state cookie over https: %q", c)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A session cookie changed in the browser, e.g. to name another user, is
// not believed, and neither is one past its expiry: both mean signing in
// again.
func TestTamperedAndExpiredSessionsAreRefused(t *testing.T) {
	r := newRig(t)
	r.get("/private")
	ck := r.sessionCookie()
	if ck == nil {
		t.Fatal("no session cookie")
	}
	payload, mac, _ := strings.Cut(ck.Value, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forged := strings.Replace(strings.Replace(string(raw), `"uid":10`, `"uid":1`, 1), `"user":"alice"`, `"user":"root"`, 1)
	for name, value := range map[string]string{
		"renamed":   base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + mac,
		"no MAC":    payload,
		"other MAC": payload + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
	} {
		req := httptest.NewRequest(http.MethodGet, "/private", nil)
		req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: value})
		if p, err := r.signin.Identify(req); !errors.Is(err, signin.ErrNoPerson) {
			t.Errorf("%s session: %+v, %v; want ErrNoPerson", name, p, err)
		}
	}
	// A state cookie is signed with a key of its own: it cannot pass for a session.
	r.gitlab.SignInAs(0)
	resp := r.noFollow(r.srv.URL + signin.LoginPath + "?return=/")
	for _, c := range resp.Cookies() {
		req := httptest.NewRequest(http.MethodGet, "/private", nil)
		req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: c.Value})
		if _, err := r.signin.Identify(req); !errors.Is(err, signin.ErrNoPerson) {
			t.Errorf("a state cookie passed for a session: %v", err)
		}
	}

	req := httptest.NewRequest(http.MethodGet, "/private", nil)
	req.AddCookie(ck)
	if p, err := r.signin.Identify(req); err != nil || p.Username != "alice" {
		t.Fatalf("the real cookie: %+v, %v", p, err)
	}
	r.clock.Advance(signin.DefaultSessionTTL)
	if _, err := r.signin.Identify(req); !errors.Is(err, signin.ErrNoPerson) {
		t.Errorf("expired session: %v", err)
	}
	// The browser is sent to sign in again; GitLab, where nobody is signed in now, asks who they are.
	if code, _ := r.get("/private"); code != http.StatusUnauthorized || len(r.hops) != 1 || r.hops[0].Path != "/oauth/authorize" {
		t.Errorf("expired session: %d after %v, want GitLab's sign-in", code, r.hops)
	}
}

// startLogin starts a sign-in in the rig's browser and returns GitLab's
// authorization URL, without going there.
func (r *rig) startLogin() *url.URL {
	r.t.Helper()
	resp := r.noFollow(r.srv.URL + signin.LoginPath + "?return=/private")
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		r.t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return loc
}

// A callback whose state is not the one this browser's sign-in sent is
// refused before the code is redeemed: an attacker cannot sign a victim
// in as the attacker (login CSRF) or finish a sign-in started elsewhere.
func TestCallbackChecksState(t *testing.T) {
	r := newRig(t)
	auth := r.startLogin()
	q := auth.Query()
	q.Set("state", "attacker-state")
	auth.RawQuery = q.Encode()
	// GitLab issues a code for the attacker's state and sends the browser back.
	resp := r.noFollow(auth.String())
	cb, _ := resp.Location()
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("fake GitLab did not issue a code: %d", resp.StatusCode)
	}
	if resp := r.noFollow(cb.String()); resp.StatusCode != http.StatusBadRequest || r.sessionCookie() != nil {
		t.Errorf("wrong state: %d, session %v", resp.StatusCode, r.sessionCookie())
	}
	// A browser that never started a sign-in has no state cookie at all.
	fresh := newRig(t)
	if resp := fresh.noFollow(fresh.srv.URL + signin.CallbackPath + "?code=stolen&state=x"); resp.StatusCode != http.StatusBadRequest || fresh.sessionCookie() != nil {
		t.Errorf("no sign-in under way: %d", resp.StatusCode)
	}
	for _, c := range r.gitlab.CallLog() {
		if c == "POST /oauth/token" {
			t.Errorf("a code was redeemed on a callback that should have been refused")
		}
	}
	// The right state still works once, and only once.
	auth = r.startLogin()
	resp = r.noFollow(auth.String())
	cb, _ = resp.Location()
	if resp := r.noFollow(cb.String()); resp.StatusCode != http.StatusSeeOther || r.sessionCookie() == nil {
		t.Fatalf("right state: %d", resp.StatusCode)
	}
	if resp := r.noFollow(cb.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a callback replayed: %d", resp.StatusCode)
	}
}

// GitLab's refusal, and an account GitLab reports blocked, sign nobody in.
func TestRefusedSignIns(t *testing.T) {
	r := newRig(t)
	auth := r.startLogin()
	denied := r.srv.URL + signin.CallbackPath + "?" + url.Values{"error": {"access_denied"}, "state": {auth.Query().Get("state")}}.Encode()
	if resp := r.noFollow(denied); resp.StatusCode != http.StatusForbidden || r.sessionCookie() != nil {
		t.Errorf("GitLab denied: %d", resp.StatusCode)
	}
	r.gitlab.SignInAs(12)
	code, body := r.get("/private")
	if code != http.StatusForbidden || !strings.Contains(body, "GitLab account mallory is blocked") || r.sessionCookie() != nil {
		t.Errorf("blocked account: %d %s", code, body)
	}
}

// After sign-in the browser goes back only to a page on shipbot: a return
// address elsewhere is refused before anything is sent to GitLab.
func TestReturnPathMustBeLocal(t *testing.T) {
	r := newRig(t)
	for _, to := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
		"http:/evil.example", "javascript:alert(1)", "evil.example", "/ok\r\nSet-Cookie: x=y"} {
		resp := r.noFollow(r.srv.URL + signin.LoginPath + "?" + url.Values{"return": {to}}.Encode())
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("return %q: %d to %q, want 400", to, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if len(r.gitlab.CallLog()) != 0 {
		t.Errorf("GitLab was asked: %v", r.gitlab.CallLog())
	}
	if code, _ := r.get(signin.LoginPath + "?return=" + url.QueryEscape("/private?x=1")); code != http.StatusOK || r.hops[2].RequestURI() != "/private?x=1" {
		t.Errorf("a local return: %d via %v", code, r.hops)
	}
}

func TestLocalPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"/": true, "/chat/actions/abc.def": true, "/releases/r1?tab=2": true, "/%2F%2Fevil.example": true,
		"": false, "//evil.example": false, "/\\evil.example": false, "https://evil.example": false,
		"/a\nb": false, "javascript:alert(1)": false, "relative": false, "/a\x00": false,
	} {
		if _, err := signin.LocalPath(p); (err == nil) != ok {
			t.Errorf("LocalPath(%q): %v, want ok=%v", p, err, ok)
		}
	}
}

// FuzzLocalPath: whatever LocalPath accepts stays on the site when a
// browser resolves it.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "/a?b=c", "https://x", "/%2F/x", "/\t/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://shipbot.example/")
	f.Fuzz(func(t *testing.T, p string) {
		if _, err := signin.LocalPath(p); err != nil {
			return
		}
		u, err := base.Parse(p)
		if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
			t.Errorf("LocalPath accepted %q, which resolves to %v (%v)", p, u, err)
		}
	})
}

func TestNewChecksOptions(t *testing.T) {
	ok := signin.Options{GitLabURL: "https://gitlab.example", ClientID: "id", ClientSecret: "s",
		PublicURL: "https://shipbot.example", SessionKey: []byte(sessionKey)}
	if s, err := signin.New(ok); err != nil || s.RedirectURL() != "https://shipbot.example/auth/gitlab/callback" {
		t.Fatalf("New: %v", err)
	}
	for name, mod := range map[string]func(*signin.Options){
		"short key":   func(o *signin.Options) { o.SessionKey = []byte("short") },
		"no secret":   func(o *signin.Options) { o.ClientSecret = "" },
		"bad gitlab":  func(o *signin.Options) { o.GitLabURL = "gitlab.example" },
		"bad public":  func(o *signin.Options) { o.PublicURL = "/shipbot" },
		"no clientID": func(o *signin.Options) { o.ClientID = "" },
	} {
		o := ok
		mod(&o)
		if _, err := signin.New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzSessionCookie: no cookie value names a person unless shipbot signed
// it; the fuzzer starts from a real session and mutates it.
func FuzzSessionCookie(f *testing.F) {
	r := newRig(f)
	r.get("/private")
	real := r.sessionCookie()
	if real == nil {
		f.Fatal("no session cookie")
	}
	f.Add(real.Value)
	f.Add(strings.Replace(real.Value, ".", "..", 1))
	f.Add("e30.")
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest(http.MethodGet, "/private", nil)
		req.AddCookie(&http.Cookie{Name: signin.SessionCookie, Value: value})
		p, err := r.signin.Identify(req)
		if err == nil && value != real.Value {
			t.Errorf("cookie %q named %+v", value, p)
		}
	})
}

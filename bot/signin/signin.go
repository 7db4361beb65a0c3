// Package signin tells shipbot's web pages who is in front of the browser.
// GitLab is the identity provider: SignIn runs OAuth 2's authorization-code
// flow with PKCE against GitLab, asks GitLab's /api/v4/user who the token
// belongs to, and keeps the answer in a session cookie that shipbot signs.
// Proxy, the explicit alternative, believes a user header only from the
// addresses of an authenticating proxy.
//
// Both are Identifiers. The pages that use one (DingTalk's confirmation
// pages, the dashboard) decide what a person may do; this package only
// says who they are.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// Routes of the sign-in, under shipbot's public URL. The GitLab
// application's redirect URI is publicURL + CallbackPath.
const (
	LoginPath    = "/auth/gitlab/login" // ?return=<local path>
	CallbackPath = "/auth/gitlab/callback"
)

// Cookies. The session cookie is sent to every page; the state cookie
// only to the callback, for the few minutes a sign-in may take.
const (
	SessionCookie = "shipbot_session"
	StateCookie   = "shipbot_signin"
)

// Defaults and bounds.
const (
	// MinKeyBytes is the shortest session key accepted.
	MinKeyBytes = 32
	// DefaultSessionTTL is how long a session lasts: a working day, after
	// which GitLab is asked again, and a person blocked there is out.
	DefaultSessionTTL = 8 * time.Hour
	// stateTTL bounds how long a sign-in at GitLab may take.
	stateTTL = 10 * time.Minute
	// Scope is all shipbot asks of GitLab: who the person is.
	Scope = "read_user"
)

// ErrNoPerson means shipbot cannot tell who sent a request: no session, a
// session that was changed or has expired, or no header from a trusted proxy.
var ErrNoPerson = errors.New("shipbot cannot tell who you are")

// Person is who sent a request.
type Person struct {
	UserID   int64  // GitLab user id; 0 when only a proxy header named them
	Username string // GitLab username (from a proxy: whatever its header says)
	Name     string // display name, from GitLab
	Email    string // from a proxy's email header only
}

// Identifier says who sent a request, and answers one from nobody it knows.
type Identifier interface {
	// Identify returns the person behind r; an error wrapping ErrNoPerson
	// when there is none.
	Identify(r *http.Request) (Person, error)
	// Challenge answers a request from nobody: a redirect to sign in that
	// comes back to returnTo, a local path, or a page saying how to.
	Challenge(c echo.Context, returnTo string) error
}

// Options configure a SignIn.
type Options struct {
	GitLabURL    string // GitLab's base URL, e.g. https://gitlab.example.com
	ClientID     string // the GitLab application's ID
	ClientSecret string // the GitLab application's secret
	// PublicURL is shipbot's address as browsers reach it. Its scheme sets
	// the cookies' Secure flag, and any path its cookies' paths.
	PublicURL  string
	SessionKey []byte        // signs the cookies; at least MinKeyBytes
	SessionTTL time.Duration // DefaultSessionTTL when 0
	// HTTP calls GitLab's token endpoint and API; a client with a 10 s
	// timeout when nil.
	HTTP *http.Client
	Now  func() time.Time // time.Now when nil
	Log  *slog.Logger     // slog.Default() when nil
}

// SignIn is sign-in with GitLab. It is safe for concurrent use.
type SignIn struct {
	o      Options
	conf   oauth2.Config
	seal   sealer
	base   string // the path of PublicURL, without a trailing slash
	secure bool
}

var _ Identifier = (*SignIn)(nil)

// New checks o and builds a SignIn.
func New(o Options) (*SignIn, error) {
	gl, err1 := url.Parse(o.GitLabURL)
	pub, err2 := url.Parse(o.PublicURL)
	switch {
	case err1 != nil || gl.Host == "" || (gl.Scheme != "http" && gl.Scheme != "https"):
		return nil, fmt.Errorf("signin: gitlab URL %q is not an absolute http(s) URL", o.GitLabURL)
	case err2 != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https"):
		return nil, fmt.Errorf("signin: public URL %q is not an absolute http(s) URL", o.PublicURL)
	case o.ClientID == "" || o.ClientSecret == "":
		return nil, errors.New("signin: the GitLab application's client id and secret are required")
	case len(o.SessionKey) < MinKeyBytes:
		return nil, fmt.Errorf("signin: the session key is %d bytes; use at least %d", len(o.SessionKey), MinKeyBytes)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	gitlab := strings.TrimRight(o.GitLabURL, "/")
	s := &SignIn{o: o, seal: sealer{key: o.SessionKey}, base: strings.TrimRight(pub.Path, "/"), secure: pub.Scheme == "https"}
	s.o.GitLabURL = gitlab
	s.conf = oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: []string{Scope},
		RedirectURL: strings.TrimRight(o.PublicURL, "/") + CallbackPath,
		// GitLab documents the client's credentials as form parameters.
		Endpoint: oauth2.Endpoint{AuthURL: gitlab + "/oauth/authorize", TokenURL: gitlab + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
	}
	return s, nil
}

// RedirectURL is the callback to register as the GitLab application's
// redirect URI.
func (s *SignIn) RedirectURL() string { return s.conf.RedirectURL }

// Register mounts the login and the callback on e.
func (s *SignIn) Register(e *echo.Echo) {
	e.GET(LoginPath, s.login)
	e.GET(CallbackPath, s.callback)
}

// Identify returns the person whose session cookie r carries.
func (s *SignIn) Identify(r *http.Request) (Person, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return Person{}, fmt.Errorf("%w: not signed in", ErrNoPerson)
	}
	var v session
	if err := s.seal.open(purposeSession, ck.Value, s.o.Now(), &v); err != nil {
		return Person{}, fmt.Errorf("%w: the session is not valid or has expired", ErrNoPerson)
	}
	return Person{UserID: v.UserID, Username: v.Username, Name: v.Name}, nil
}

// Challenge sends the browser to GitLab to sign in, and back to returnTo.
func (s *SignIn) Challenge(c echo.Context, returnTo string) error {
	return s.start(c, returnTo)
}

// login starts a sign-in: GET LoginPath?return=/some/page.
func (s *SignIn) login(c echo.Context) error {
	to := c.QueryParam("return")
	if to == "" {
		to = "/"
	}
	return s.start(c, to)
}

// start sets the state cookie, which binds the sign-in to this browser,
// and redirects to GitLab's authorization page.
func (s *SignIn) start(c echo.Context, returnTo string) error {
	to, err := LocalPath(returnTo)
	if err != nil {
		s.o.Log.Warn("signin: refused a return path that leaves shipbot", "remote", c.RealIP())
		return writePage(c, http.StatusBadRequest, "Cannot sign in", "The address to return to after signing in is not a page on shipbot.")
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	exp := s.o.Now().Add(stateTTL)
	value, err := s.seal.seal(purposeState, pending{State: state, Verifier: verifier, Return: to, Expires: exp.Unix()})
	if err != nil {
		return err
	}
	c.SetCookie(s.cookie(StateCookie, value, s.base+CallbackPath, exp))
	setHeaders(c.Response().Header())
	return c.Redirect(http.StatusFound, s.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
}

// callback finishes a sign-in: GitLab sends the browser here with a code
// and the state. The state must match the browser's state cookie; the
// code is exchanged with the PKCE verifier, and the token asked who it is.
func (s *SignIn) callback(c echo.Context) error {
	req := c.Request()
	var p pending
	ck, err := req.Cookie(StateCookie)
	if err == nil {
		err = s.seal.open(purposeState, ck.Value, s.o.Now(), &p)
	}
	c.SetCookie(s.cookie(StateCookie, "", s.base+CallbackPath, time.Time{})) // a sign-in is tried once
	q := req.URL.Query()
	switch {
	case err != nil:
		s.o.Log.Info("signin: callback without a valid sign-in under way", "remote", c.RealIP())
		return writePage(c, http.StatusBadRequest, "Sign-in expired", "This sign-in was not started in this browser, or took too long. Open the page again to sign in.")
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1:
		s.o.Log.Warn("signin: callback with a state this browser did not send", "remote", c.RealIP())
		return writePage(c, http.StatusBadRequest, "Sign-in refused", "GitLab's answer does not belong to the sign-in this browser started. Open the page again to sign in.")
	case q.Get("error") != "":
		s.o.Log.Info("signin: GitLab did not authorize", "error", oauthErrorCode(q.Get("error")))
		return writePage(c, http.StatusForbidden, "Not signed in", "GitLab did not sign you in to shipbot ("+oauthErrorCode(q.Get("error"))+").")
	case q.Get("code") == "":
		return writePage(c, http.StatusBadRequest, "Sign-in refused", "GitLab's answer carries no authorization code.")
	}
	u, err := s.exchange(req.Context(), q.Get("code"), p.Verifier)
	if err != nil {
		s.o.Log.Error("signin: GitLab sign-in failed", "err", err)
		return writePage(c, http.StatusBadGateway, "Sign-in failed", "shipbot could not confirm the sign-in with GitLab. Try again.")
	}
	if u.State != "active" {
		s.o.Log.Warn("signin: refused an account that is not active", "user", u.Username, "state", u.State)
		return writePage(c, http.StatusForbidden, "Not signed in", fmt.Sprintf("GitLab account %s is %s.", u.Username, u.State))
	}
	now := s.o.Now()
	exp := now.Add(s.o.SessionTTL)
	value, err := s.seal.seal(purposeSession, session{UserID: u.ID, Username: u.Username, Name: u.Name, Issued: now.Unix(), Expires: exp.Unix()})
	if err != nil {
		return err
	}
	c.SetCookie(s.cookie(SessionCookie, value, s.base+"/", exp))
	s.o.Log.Info("signin: signed in with GitLab", "user", u.Username, "user_id", u.ID)
	return c.Redirect(http.StatusSeeOther, s.base+p.Return)
}

// exchange trades the code for a token and asks GitLab whose it is.
func (s *SignIn) exchange(ctx context.Context, code, verifier string) (gitlabUser, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.o.HTTP)
	tok, err := s.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return gitlabUser{}, fmt.Errorf("token exchange: %w", err)
	}
	return s.whoami(ctx, tok)
}

// cookie is one of shipbot's cookies; a zero expiry deletes it.
func (s *SignIn) cookie(name, value, path string, exp time.Time) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
	if exp.IsZero() {
		ck.MaxAge = -1
	} else {
		ck.Expires, ck.MaxAge = exp, max(1, int(exp.Sub(s.o.Now())/time.Second))
	}
	return ck
}

// oauthErrorCode keeps an OAuth error code for display only when it looks
// like one: the browser brings it, so it may be anything.
func oauthErrorCode(code string) string {
	if len(code) > 40 || strings.ContainsFunc(code, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) {
		return "error"
	}
	return code
}

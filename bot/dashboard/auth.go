package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/errkind"
)

// Access modes, as in shipbot.yaml's dashboard.access.
const (
	AccessOpen   = "open"
	AccessToken  = "token"
	AccessBasic  = "basic"
	AccessGitLab = "gitlab"
)

// Access says who may read the dashboard.
type Access struct {
	Mode     string // AccessOpen, AccessToken, AccessBasic or AccessGitLab
	Token    string // AccessToken
	Username string // AccessBasic
	Password string // AccessBasic
	// Identity says who reads, with AccessGitLab: signed in with GitLab
	// (*signin.SignIn), or named by a trusted proxy (signin.Proxy).
	Identity signin.Identifier
	// Readers decides whether they may, with AccessGitLab.
	Readers Readers
}

// Readers decides who may read with AccessGitLab. A refusal is of
// errkind.Forbidden, with words fit to show the reader; any other error
// is a failure to find out.
type Readers interface {
	MayRead(ctx context.Context, p signin.Person) error
}

// CookieName is the cookie that keeps a browser signed in with a token.
const CookieName = "shipbot_dashboard"

// gate checks readers. It keeps only hashes of the credentials, so that
// comparisons take the same time whatever the guess and its length.
type gate struct {
	mode     string
	identity signin.Identifier // AccessGitLab
	readers  Readers           // AccessGitLab
	token    [sha256.Size]byte
	session  string // cookie value: an HMAC of a fixed text under the token, not the token itself
	user     [sha256.Size]byte
	pass     [sha256.Size]byte
}

func newGate(a Access) (*gate, error) {
	g := &gate{mode: a.Mode, identity: a.Identity, readers: a.Readers}
	switch a.Mode {
	case AccessOpen:
	case AccessGitLab:
		if a.Identity == nil || a.Readers == nil {
			return nil, fmt.Errorf("dashboard: access gitlab needs an identity and readers")
		}
	case AccessToken:
		if a.Token == "" {
			return nil, fmt.Errorf("dashboard: access token needs a token")
		}
		g.token = sha256.Sum256([]byte(a.Token))
		mac := hmac.New(sha256.New, []byte(a.Token))
		mac.Write([]byte("shipbot dashboard session"))
		g.session = hex.EncodeToString(mac.Sum(nil))
	case AccessBasic:
		if a.Username == "" || a.Password == "" {
			return nil, fmt.Errorf("dashboard: access basic needs a username and a password")
		}
		g.user, g.pass = sha256.Sum256([]byte(a.Username)), sha256.Sum256([]byte(a.Password))
	default:
		return nil, fmt.Errorf("dashboard: access %q is not one of open, token, basic, gitlab", a.Mode)
	}
	return g, nil
}

func same(a [sha256.Size]byte, b string) bool {
	sum := sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(a[:], sum[:]) == 1
}

// check lets a reader through or answers 401.
func (g *gate) check(d *Dashboard) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch g.mode {
			case AccessToken:
				return g.checkToken(d, c, next)
			case AccessGitLab:
				return g.checkPerson(d, c, next)
			case AccessBasic:
				u, p, ok := c.Request().BasicAuth()
				// Both are compared, whatever the first says, so timing tells nothing.
				if okU, okP := same(g.user, u), same(g.pass, p); ok && okU && okP {
					return next(c)
				}
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="shipbot dashboard", charset="UTF-8"`)
				return d.errorPage(c, http.StatusUnauthorized, "sign in with the dashboard's username and password")
			}
			return next(c)
		}
	}
}

// checkToken takes the token as a bearer token, as a cookie set earlier,
// or once in ?token=, which sets the cookie and redirects to the page
// without it, so the token does not stay in the address bar or history.
func (g *gate) checkToken(d *Dashboard, c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	if t, ok := strings.CutPrefix(req.Header.Get(echo.HeaderAuthorization), "Bearer "); ok && same(g.token, strings.TrimSpace(t)) {
		return next(c)
	}
	if ck, err := req.Cookie(CookieName); err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(g.session)) == 1 {
		return next(c)
	}
	q := req.URL.Query()
	if t := q.Get("token"); t != "" {
		if !same(g.token, t) {
			d.opts.Log.Warn("dashboard: wrong token", "path", req.URL.Path, "remote", c.RealIP())
			return d.errorPage(c, http.StatusUnauthorized, "wrong dashboard token")
		}
		c.SetCookie(&http.Cookie{
			Name: CookieName, Value: g.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: c.Scheme() == "https", MaxAge: 30 * 24 * 3600,
		})
		q.Del("token")
		u := url.URL{Path: req.URL.Path, RawQuery: q.Encode()}
		return c.Redirect(http.StatusSeeOther, u.String())
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="shipbot dashboard"`)
	return d.errorPage(c, http.StatusUnauthorized, "this dashboard needs its token: open /?token=<dashboard.token> once, or send Authorization: Bearer <dashboard.token>")
}

// checkPerson lets in a person the identity names and Readers accepts. A
// browser from nobody is sent to sign in, and back to the page it asked for.
func (g *gate) checkPerson(d *Dashboard, c echo.Context, next echo.HandlerFunc) error {
	req := c.Request()
	p, err := g.identity.Identify(req)
	if errors.Is(err, signin.ErrNoPerson) {
		return g.identity.Challenge(c, req.URL.RequestURI())
	}
	if err == nil {
		err = g.readers.MayRead(req.Context(), p)
	}
	switch {
	case err == nil:
		return next(c)
	case errkind.Of(err) == errkind.Forbidden:
		d.opts.Log.Info("dashboard: reader refused", "user", p.Username, "err", err)
		return d.errorPage(c, http.StatusForbidden, errkind.Text(err))
	}
	d.opts.Log.Error("dashboard: cannot tell whether a reader may read", "user", p.Username, "err", err)
	return d.errorPage(c, http.StatusServiceUnavailable, "shipbot cannot ask GitLab who may read the dashboard now; try again")
}

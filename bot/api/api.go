// Package api is shipbot's HTTP API under /api/v1: list and read releases,
// and record control intents (continue, pause, promote, rollback, abort) on
// them; list deployment and preview records. It is a surface like chat or MR comments: it records intents and
// answers 202; the engine acts on them at its next step.
//
// Every route needs the bearer token from shipbot.yaml; without one the API
// answers 503, so it is never open by accident.
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/templates"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Headers a control request carries.
const (
	HeaderActor   = "X-Shipbot-Actor"   // who is acting; required on controls
	HeaderSurface = "X-Shipbot-Surface" // "cli" from the CLI; "api" when absent
)

// Options are the API's collaborators.
type Options struct {
	Releases ops.Releases
	// Records serves /deployments and /previews; those routes answer 404
	// when it is nil.
	Records Records
	Token   string // bearer token; empty disables the API (503)
	// People, when set, lets a person use their own GitLab access token:
	// their actions then go through Ops, with their GitLab role checked.
	People People
	Ops    Acter
	// Deploys serves POST /environments/:env/deploy; it answers 404 when nil.
	Deploys VersionDeployer
	Log     *slog.Logger     // slog.Default() when nil
	Now     func() time.Time // for summaries; time.Now when nil
}

// API serves /api/v1.
type API struct {
	releases ops.Releases
	records  Records
	token    [sha256.Size]byte
	enabled  bool
	log      *slog.Logger
	now      func() time.Time

	peopleAPI People
	ops       Acter
	people    people
	deploys   VersionDeployer
}

// New builds an API.
func New(opts Options) *API {
	a := &API{releases: opts.Releases, records: opts.Records, enabled: opts.Token != "", log: opts.Log, now: opts.Now,
		peopleAPI: opts.People, ops: opts.Ops, deploys: opts.Deploys}
	if a.ops == nil {
		a.peopleAPI = nil // a person's action must go through the role check
	}
	// Keep only a hash: comparing equal-length digests in constant time
	// reveals neither the token nor its length.
	a.token = sha256.Sum256([]byte(opts.Token))
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Register mounts the API's routes on e.
func (a *API) Register(e *echo.Echo) {
	g := e.Group(Prefix, a.authenticate)
	g.GET("/releases", a.list)
	g.GET("/releases/:id", a.get)
	for _, name := range actions {
		g.POST("/releases/:id/"+name, a.control(name))
	}
	g.GET("/locks", a.locks)
	g.POST("/environments/:env/lock", a.lock(false))
	g.POST("/environments/:env/unlock", a.lock(true))
	g.POST("/environments/:env/deploy", a.deploy)
	g.GET("/rollback/last-good", a.planLastGood)
	g.POST("/rollback/last-good", a.restoreLastGood)
	if a.records != nil {
		g.GET("/deployments", a.deployments)
		g.GET("/previews", a.previews)
	}
	// Replace the group's default catch-alls so unknown paths answer in our
	// error shape, after authentication like every other route.
	g.RouteNotFound("", a.notFound)
	g.RouteNotFound("/*", a.notFound)
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Disabled is the message of every response while no token is configured.
const Disabled = "api disabled: set api.token in shipbot.yaml"

func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !a.enabled {
			return c.JSON(http.StatusServiceUnavailable, Error{Disabled})
		}
		got, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return unauthorized(c, "missing bearer token: send Authorization: Bearer <api.token>")
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			return a.authenticatePerson(c, got, next)
		}
		return next(c)
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="shipbot"`)
	return c.JSON(http.StatusUnauthorized, Error{msg})
}

func (a *API) notFound(c echo.Context) error {
	method, path := c.Request().Method, c.Request().URL.Path
	if m := a.allow(path); m != "" && m != method {
		c.Response().Header().Set(echo.HeaderAllow, m)
		return c.JSON(http.StatusMethodNotAllowed, Error{fmt.Sprintf("%s takes %s, not %s", path, m, method)})
	}
	return c.JSON(http.StatusNotFound, Error{fmt.Sprintf("no route %s %s", method, path)})
}

// allow says which method a path of ours takes, so that a wrong method
// gets a 405 that says which, not a 404.
func (a *API) allow(path string) string {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(path, Prefix), "/"), "/")
	switch {
	case (parts[0] == "deployments" || parts[0] == "previews") && len(parts) == 1 && a.records != nil:
		return http.MethodGet
	case parts[0] == "locks" && len(parts) == 1:
		return http.MethodGet
	case parts[0] == "rollback" && len(parts) == 2 && parts[1] == "last-good":
		return http.MethodGet + ", " + http.MethodPost
	case parts[0] == "environments" && len(parts) == 3 && slices.Contains([]string{"lock", "unlock", "deploy"}, parts[2]):
		return http.MethodPost
	case parts[0] != "releases":
		return ""
	case len(parts) <= 2:
		return http.MethodGet
	case len(parts) == 3 && slices.Contains(actions, parts[2]):
		return http.MethodPost
	}
	return ""
}

// badRequest answers 400 about one parameter, header or the body.
func badRequest(c echo.Context, what, format string, args ...any) error {
	return c.JSON(http.StatusBadRequest, Error{what + ": " + fmt.Sprintf(format, args...)})
}

// fail answers with the status and the text errkind gives err; the full
// chain of an internal error goes to the log only.
func (a *API) fail(c echo.Context, id string, err error) error {
	if errkind.Of(err) == errkind.Internal {
		a.log.Error("api request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "release", id, "err", err)
	}
	return c.JSON(errkind.HTTPStatus(err), Error{errkind.Text(err)})
}

// Release is a release as the API shows it: the stored document plus a
// one-line summary from release.Describe, without its rendering parameters.
type Release struct {
	release.Release
	Summary string `json:"summary"`
	// Params hides the embedded release's rendering parameters: their env
	// and config values may hold secrets, which the API never serves. A
	// field at this depth takes the JSON name "params" from the embedded one.
	Params *struct{} `json:"params,omitempty"`
}

func (a *API) view(r release.Release) Release {
	r.Params = templates.Params{}
	return Release{Release: r, Summary: release.Describe(r, a.now())}
}

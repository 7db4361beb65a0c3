package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// Locker is what the API needs for environment locks: Releases has it
// when it is the release engine.
type Locker interface {
	ops.Locks
	Locks(ctx context.Context) ([]release.Lock, error)
}

// Governor checks a person's role before they lock, unlock or deploy;
// *ops.Service is it.
type Governor interface {
	Lock(ctx context.Context, a ops.Actor, project, env, reason string) (release.Lock, error)
	Unlock(ctx context.Context, a ops.Actor, project, env string) (release.Lock, error)
}

var _ Governor = (*ops.Service)(nil)

// LockRequest is the body of POST /environments/:env/lock and /unlock.
type LockRequest struct {
	// Project is the GitLab project (path_with_namespace) whose role
	// decides whether a person may lock; the operator token needs none.
	Project string `json:"project,omitempty"`
	Reason  string `json:"reason,omitempty"` // lock: why, shown to everyone the lock refuses
	// Force, with the operator token, breaks someone else's lock.
	Force bool `json:"force,omitempty"`
}

// locks answers GET /locks: every environment lock.
func (a *API) locks(c echo.Context) error {
	lk, ok := a.releases.(Locker)
	if !ok {
		return c.JSON(http.StatusNotFound, Error{"this shipbot keeps no locks"})
	}
	ls, err := lk.Locks(c.Request().Context())
	if err != nil {
		return a.fail(c, "", err)
	}
	return c.JSON(http.StatusOK, map[string][]release.Lock{"locks": nonNil(ls)})
}

func nonNil(ls []release.Lock) []release.Lock {
	if ls == nil {
		return []release.Lock{}
	}
	return ls
}

// lock answers POST /environments/:env/lock and /unlock.
func (a *API) lock(unlock bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		env := c.Param("env")
		if msgs := validation.IsDNS1123Label(env); len(msgs) > 0 {
			return badRequest(c, "environment", "%q: %s", env, msgs[0])
		}
		body, what, err := a.lockBody(c)
		if err != nil {
			return badRequest(c, what, "%s", err.Error())
		}
		l, err := a.applyLock(c, env, body, unlock)
		if err != nil {
			return a.fail(c, "", err)
		}
		a.log.Info("environment lock changed", "environment", env, "unlock", unlock, "holder", l.Holder)
		return c.JSON(http.StatusOK, l)
	}
}

// applyLock locks or unlocks env as the request's person, through the
// role check, or as the operator token's actor.
func (a *API) applyLock(c echo.Context, env string, body LockRequest, unlock bool) (release.Lock, error) {
	ctx := c.Request().Context()
	if p, ok := personOf(c); ok {
		g, ok := a.ops.(Governor)
		switch {
		case !ok:
			return release.Lock{}, fmt.Errorf("%w: locks need the role check, which this shipbot lacks", release.ErrInvalid)
		case body.Project == "":
			return release.Lock{}, fmt.Errorf("%w: project: say which GitLab project's role lets you lock %s", release.ErrInvalid, env)
		}
		p.Surface = surfaceOf(c)
		if unlock {
			return g.Unlock(ctx, p, body.Project, env)
		}
		return g.Lock(ctx, p, body.Project, env, body.Reason)
	}
	actor := strings.TrimSpace(c.Request().Header.Get(HeaderActor))
	if _, err := operatorActor(actor); err != nil {
		return release.Lock{}, fmt.Errorf("%w: %s: %w", release.ErrInvalid, HeaderActor, err)
	}
	lk, ok := a.releases.(Locker)
	if !ok {
		return release.Lock{}, fmt.Errorf("%w: this shipbot keeps no locks", release.ErrInvalid)
	}
	if unlock {
		return lk.Unlock(ctx, env, actor, surfaceOf(c), body.Force)
	}
	return lk.LockEnvironment(ctx, release.Lock{Environment: env, Holder: actor, Reason: body.Reason, Surface: surfaceOf(c)})
}

// surfaceOf is the surface a request says it comes from: the CLI, or the API.
func surfaceOf(c echo.Context) release.Surface {
	if strings.TrimSpace(c.Request().Header.Get(HeaderSurface)) == string(release.SurfaceCLI) {
		return release.SurfaceCLI
	}
	return release.SurfaceAPI
}

// lockBody reads a lock request, refusing unknown fields.
func (a *API) lockBody(c echo.Context) (LockRequest, string, error) {
	body, err := readJSON[LockRequest](c, true)
	if err != nil {
		return body, "body", err
	}
	if len(body.Reason) > maxComment {
		return body, "reason", fmt.Errorf("longer than %d bytes", maxComment)
	}
	if body.Force && isPerson(c) {
		return body, "force", errors.New("only the operator token forces; a Maintainer's unlock breaks a lock by itself")
	}
	return body, "", nil
}

func isPerson(c echo.Context) bool { _, ok := personOf(c); return ok }

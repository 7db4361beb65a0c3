package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// People says who holds a GitLab access token; *gitlab.Client is it.
type People interface {
	UserByToken(ctx context.Context, token string) (gitlab.User, error)
}

// Acter records a person's intent once their GitLab role allows it, with
// the approvals and self-approval rules of the environment; *ops.Service is
// it, the same check chat and MR comments go through.
type Acter interface {
	Act(ctx context.Context, a ops.Actor, releaseID string, in release.Intent) (release.Release, error)
}

var (
	_ People = (*gitlab.Client)(nil)
	_ Acter  = (*ops.Service)(nil)
)

// personTTL is how long shipbot believes GitLab's answer about a token:
// a CLI session of several commands asks GitLab once.
const personTTL = time.Minute

// maxPeople bounds the remembered answers; past it they are all forgotten.
const maxPeople = 1024

// people remembers who holds which token, by the token's hash.
type people struct {
	mu    sync.Mutex
	known map[[sha256.Size]byte]knownPerson
}

type knownPerson struct {
	user  gitlab.User
	until time.Time
}

// personKey is where authenticate leaves the person a request acts as.
const personKey = "shipbot.person"

// person returns the GitLab user who holds token, asking GitLab unless it
// answered within personTTL. A token GitLab refuses wraps
// gitlab.ErrUnauthorized.
func (a *API) person(ctx context.Context, token string) (gitlab.User, error) {
	sum, now := sha256.Sum256([]byte(token)), a.now()
	a.people.mu.Lock()
	k, ok := a.people.known[sum]
	a.people.mu.Unlock()
	if ok && now.Before(k.until) {
		return k.user, nil
	}
	u, err := a.peopleAPI.UserByToken(ctx, token)
	if err != nil {
		return gitlab.User{}, err
	}
	a.people.mu.Lock()
	defer a.people.mu.Unlock()
	if a.people.known == nil || len(a.people.known) >= maxPeople {
		a.people.known = map[[sha256.Size]byte]knownPerson{}
	}
	a.people.known[sum] = knownPerson{user: u, until: now.Add(personTTL)}
	return u, nil
}

// authenticatePerson answers a request whose bearer token is not the
// operator's: a GitLab access token acts as the active user it belongs to.
func (a *API) authenticatePerson(c echo.Context, token string, next echo.HandlerFunc) error {
	if a.peopleAPI == nil {
		a.log.Warn("api request with a wrong token", "method", c.Request().Method, "path", c.Request().URL.Path, "remote", c.RealIP())
		return unauthorized(c, "wrong API token")
	}
	u, err := a.person(c.Request().Context(), token)
	switch {
	case errors.Is(err, gitlab.ErrUnauthorized):
		a.log.Warn("api request with a token neither shipbot nor GitLab accepts", "method", c.Request().Method, "path", c.Request().URL.Path, "remote", c.RealIP())
		return unauthorized(c, "wrong token: neither api.token nor a GitLab access token GitLab accepts")
	case err != nil:
		a.log.Error("api: cannot ask GitLab who holds a token", "err", err)
		return c.JSON(http.StatusServiceUnavailable, Error{"cannot ask GitLab who holds this token now; try again"})
	case !u.Active():
		return c.JSON(http.StatusForbidden, Error{fmt.Sprintf("GitLab account %s is %s", u.Username, u.State)})
	}
	c.Set(personKey, ops.Actor{Username: u.Username, UserID: u.ID})
	return next(c)
}

// personOf is the person a request acts as, when its token is theirs.
func personOf(c echo.Context) (ops.Actor, bool) {
	p, ok := c.Get(personKey).(ops.Actor)
	return p, ok
}

package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// LastGoodPlan answers GET /rollback/last-good: what going back would do,
// and the digest that confirms exactly this plan.
type LastGoodPlan struct {
	Project     string            `json:"project"`
	Environment string            `json:"environment,omitempty"`
	Digest      string            `json:"digest"`
	Plan        []release.Restore `json:"plan"`
}

// RestoreRequest is the body of POST /rollback/last-good.
type RestoreRequest struct {
	Project     string `json:"project"`
	Environment string `json:"environment,omitempty"`
	Digest      string `json:"digest"` // from the plan the person confirmed
	Reason      string `json:"reason,omitempty"`
}

// Restored answers a restore: the releases it rolled back or created.
type Restored struct {
	Releases []Release `json:"releases"`
}

// lastGoodActer applies a confirmed plan as a person; *ops.Service is it.
type lastGoodActer interface {
	RestoreLastGood(ctx context.Context, a ops.Actor, project, env, digest, reason string) ([]release.Release, error)
}

var _ lastGoodActer = (*ops.Service)(nil)

// planLastGood answers GET /rollback/last-good?project=P[&environment=E].
func (a *API) planLastGood(c echo.Context) error {
	rs, ok := a.releases.(ops.Restorer)
	if !ok {
		return c.JSON(http.StatusNotFound, Error{"this shipbot cannot go back to last good versions"})
	}
	q := c.QueryParams()
	project, env := strings.TrimSpace(q.Get("project")), strings.TrimSpace(q.Get("environment"))
	if project == "" {
		return badRequest(c, "project", "missing: the GitLab project, e.g. shop/web")
	}
	plan, err := rs.PlanLastGood(c.Request().Context(), project, env)
	if err != nil {
		return a.fail(c, "", err)
	}
	if plan == nil {
		plan = []release.Restore{}
	}
	return c.JSON(http.StatusOK, LastGoodPlan{Project: project, Environment: env, Digest: release.PlanDigest(plan), Plan: plan})
}

// restoreLastGood answers POST /rollback/last-good: it applies the plan the
// digest confirms and answers 202; the engine does the rest.
func (a *API) restoreLastGood(c echo.Context) error {
	body, what, err := readRestore(c)
	if err != nil {
		return badRequest(c, what, "%s", err.Error())
	}
	ctx := c.Request().Context()
	var rels []release.Release
	if p, ok := personOf(c); ok {
		acter, ok := a.ops.(lastGoodActer)
		if !ok {
			return c.JSON(http.StatusNotFound, Error{"this shipbot cannot go back to last good versions"})
		}
		p.Surface = surfaceOf(c)
		rels, err = acter.RestoreLastGood(ctx, p, body.Project, body.Environment, body.Digest, body.Reason)
	} else {
		actor := strings.TrimSpace(c.Request().Header.Get(HeaderActor))
		if what, err := operatorActor(actor); err != nil {
			return badRequest(c, what, "%s", err.Error())
		}
		rs, ok := a.releases.(ops.Restorer)
		if !ok {
			return c.JSON(http.StatusNotFound, Error{"this shipbot cannot go back to last good versions"})
		}
		rels, err = rs.RestoreLastGood(ctx, release.RestoreRequest{Project: body.Project, Environment: body.Environment,
			Digest: body.Digest, Actor: actor, Surface: surfaceOf(c), Reason: body.Reason})
	}
	if err != nil {
		return a.fail(c, "", err)
	}
	out := Restored{Releases: []Release{}}
	for _, r := range rels {
		out.Releases = append(out.Releases, a.view(r))
	}
	return c.JSON(http.StatusAccepted, out)
}

func readRestore(c echo.Context) (RestoreRequest, string, error) {
	body, err := readJSON[RestoreRequest](c, false)
	if err != nil {
		return body, "body", err
	}
	switch {
	case strings.TrimSpace(body.Project) == "":
		return body, "project", fmt.Errorf("missing: the GitLab project, e.g. shop/web")
	case strings.TrimSpace(body.Digest) == "":
		return body, "digest", fmt.Errorf("missing: the digest of the plan you confirmed, from GET %s/rollback/last-good", Prefix)
	case len(body.Reason) > maxComment:
		return body, "reason", fmt.Errorf("longer than %d bytes", maxComment)
	}
	return body, "", nil
}

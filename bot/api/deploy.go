package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// VersionDeployer releases a chosen tag or commit; *govern.Deploys is it.
type VersionDeployer interface {
	Deploy(ctx context.Context, a ops.Actor, project, ref, env string) ([]release.Release, error)
}

// DeployRequest is the body of POST /environments/:env/deploy.
type DeployRequest struct {
	Project string `json:"project"` // GitLab path_with_namespace, e.g. shop/web
	Ref     string `json:"ref"`     // a tag or a commit sha, e.g. v1.3.0
}

// Deployed answers a deploy: the releases it recorded.
type Deployed struct {
	Releases []Release `json:"releases"`
}

// deploy answers POST /environments/:env/deploy. It needs a person's own
// GitLab token: deploying is judged by their role on the project, which
// the operator token has none of.
func (a *API) deploy(c echo.Context) error {
	env := c.Param("env")
	if msgs := validation.IsDNS1123Label(env); len(msgs) > 0 {
		return badRequest(c, "environment", "%q: %s", env, msgs[0])
	}
	body, what, err := readDeploy(c)
	if err != nil {
		return badRequest(c, what, "%s", err.Error())
	}
	p, ok := personOf(c)
	switch {
	case a.deploys == nil:
		return c.JSON(http.StatusNotFound, Error{"deploying a version is off: it needs gitlab.token"})
	case !ok:
		return c.JSON(http.StatusForbidden, Error{"deploying a version needs your own GitLab access token, so that your role on the project decides"})
	}
	p.Surface = surfaceOf(c)
	rels, err := a.deploys.Deploy(c.Request().Context(), p, body.Project, body.Ref, env)
	if err != nil {
		return a.fail(c, "", err)
	}
	out := Deployed{Releases: []Release{}}
	for _, r := range rels {
		out.Releases = append(out.Releases, a.view(r))
	}
	return c.JSON(http.StatusAccepted, out)
}

// readDeploy reads a deploy body: both fields are required.
func readDeploy(c echo.Context) (DeployRequest, string, error) {
	body, err := readJSON[DeployRequest](c, false)
	if err != nil {
		return body, "body", err
	}
	body.Project, body.Ref = strings.TrimSpace(body.Project), strings.TrimSpace(body.Ref)
	switch {
	case body.Project == "":
		return body, "project", fmt.Errorf("missing: the GitLab project, e.g. shop/web")
	case body.Ref == "" || len(body.Ref) > 200 || strings.ContainsAny(body.Ref, " \t\n?#"):
		return body, "ref", fmt.Errorf("want a tag or commit sha, e.g. v1.3.0")
	}
	return body, "", nil
}

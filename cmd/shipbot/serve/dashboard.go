package serve

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/config"
)

// registerDashboard serves the read-only dashboard at / when shipbot.yaml
// has a dashboard section. The read API for deployments and previews is
// part of the API (see routes), behind the API token.
func (m *Main) registerDashboard(e *echo.Echo) {
	cfg := m.Config.Dashboard
	if cfg == nil {
		e.GET("/", func(c echo.Context) error {
			return c.String(http.StatusNotFound, "dashboard off: add a dashboard section to shipbot.yaml\n")
		})
		return
	}
	envs := environmentNames(m.Config)
	access := dashboard.Access{Mode: cfg.Access, Token: cfg.Token.Value(), Username: cfg.Username, Password: cfg.Password.Value()}
	if cfg.Access == config.DashboardGitLab {
		access.Identity = m.identity(cfg.Identity, cfg.Proxies())
		if s := m.surfaces; s.authz != nil {
			access.Readers = authz.Readers{Authorizer: s.authz, People: s.resolver, Projects: dashboardProjects(m.Config)}
		}
	}
	d, err := dashboard.New(dashboard.Options{
		Records: m.store, Releases: m.releases, Environments: envs, Log: m.Log, Now: m.Now, Access: access,
	})
	if err != nil {
		// The config was validated, so this is a bug; the rest of shipbot runs on.
		m.Log.Error("dashboard off", "err", err)
		return
	}
	d.Register(e)
}

func environmentNames(c *config.Config) []string {
	envs := make([]string, 0, len(c.Environments))
	for _, env := range c.Environments {
		envs = append(envs, env.Name)
	}
	return envs
}

// dashboardProjects are the apps' GitLab projects, and those whose
// .shipbot.yaml may declare apps, each once: a reporter on any of them may
// read the dashboard with access: gitlab.
func dashboardProjects(c *config.Config) []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, a := range c.Apps {
		add(a.Project)
	}
	for _, p := range c.Projects {
		add(p.Path)
	}
	return out
}

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
	envs := make([]string, 0, len(m.Config.Environments))
	for _, env := range m.Config.Environments {
		envs = append(envs, env.Name)
	}
	access := dashboard.Access{Mode: cfg.Access, Token: cfg.Token.Value(), Username: cfg.Username, Password: cfg.Password.Value()}
	if cfg.Access == config.DashboardGitLab {
		access.Identity = m.identity(cfg.Identity, cfg.Proxies())
		if s := m.surfaces; s.authz != nil {
			access.Readers = authz.Readers{Authorizer: s.authz, People: s.resolver, Projects: m.projects()}
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

// projects are the apps' GitLab projects, and those whose .shipbot.yaml
// may declare apps, each once: a reporter on any of them may read the
// dashboard with access: gitlab.
func (m *Main) projects() []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, a := range m.Config.Apps {
		add(a.Project)
	}
	for _, p := range m.Config.Projects {
		add(p.Path)
	}
	return out
}

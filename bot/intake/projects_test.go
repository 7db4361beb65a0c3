package intake_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/test/fixtures"
)

// The projects of TestProjectSecrets: shop/web (id 9) and shop/api (id 10)
// each with a secret of its own, and shop/pay pinned to id 11 only.
var hookProjects = []config.HookProject{
	{Path: "shop/web", ID: 9, Secret: config.NewSecret("web-secret")},
	{Path: "shop/api", ID: 10, Secret: config.NewSecret("api-secret")},
	{Path: "shop/pay", ID: 11},
}

func pipelineOf(t *testing.T, project string, id int64) []byte {
	return fixtures.PipelineSuccess(t, fixtures.Build{Project: project, ProjectID: id, Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 7})
}

// TestProjectSecrets attacks the intake with hooks signed by the wrong
// project, or naming one project's path under another's id: each is
// refused and nothing reaches the inbox.
func TestProjectSecrets(t *testing.T) {
	cases := []struct {
		name  string
		body  func(t *testing.T) []byte
		token string
		code  int
	}{
		{"own secret", func(t *testing.T) []byte { return pipelineOf(t, "shop/web", 9) }, "web-secret", http.StatusOK},
		{"another project's secret", func(t *testing.T) []byte { return pipelineOf(t, "shop/web", 9) }, "api-secret", http.StatusUnauthorized},
		{"only the global secret", func(t *testing.T) []byte { return pipelineOf(t, "shop/web", 9) }, secret, http.StatusUnauthorized},
		{"path in another case", func(t *testing.T) []byte { return pipelineOf(t, "Shop/Web", 9) }, secret, http.StatusUnauthorized},
		{"own id under another path", func(t *testing.T) []byte { return pipelineOf(t, "shop/renamed", 9) }, secret, http.StatusUnauthorized},
		{"A's path and B's id, signed by B", func(t *testing.T) []byte { return pipelineOf(t, "shop/web", 10) }, "api-secret", http.StatusUnauthorized},
		{"A's path and B's id, signed by A", func(t *testing.T) []byte { return pipelineOf(t, "shop/web", 10) }, "web-secret", http.StatusUnauthorized},
		{"a project without its own secret", func(t *testing.T) []byte { return pipelineOf(t, "shop/other", 12) }, secret, http.StatusOK},
		{"... signed by a project's secret", func(t *testing.T) []byte { return pipelineOf(t, "shop/other", 12) }, "web-secret", http.StatusUnauthorized},
		{"pinned project, its id", func(t *testing.T) []byte { return pipelineOf(t, "shop/pay", 11) }, secret, http.StatusOK},
		{"pinned project's path, another id", func(t *testing.T) []byte { return pipelineOf(t, "shop/pay", 12) }, secret, http.StatusForbidden},
		{"pinned path, no id", func(t *testing.T) []byte {
			m := fixtures.Load(t, "pipeline.json")
			fixtures.Set(m, "object_attributes.status", "success")
			fixtures.Set(m, "project.path_with_namespace", "shop/pay")
			delete(m["project"].(map[string]any), "id")
			return fixtures.Marshal(t, m)
		}, secret, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.h.Projects = hookProjects
			code, out := r.post(t, "Pipeline Hook", c.body(t), "X-Gitlab-Token", c.token)
			if code != c.code {
				t.Fatalf("status %d (%v), want %d", code, out, c.code)
			}
			stored := len(r.pending(t))
			if want := map[bool]int{true: 1}[c.code == http.StatusOK]; stored != want {
				t.Errorf("%d deliveries stored, want %d", stored, want)
			}
			if s, _ := out["error"].(string); strings.Contains(s, "secret") && strings.Contains(s, c.token) {
				t.Errorf("reply echoes the token: %q", s)
			}
		})
	}
}

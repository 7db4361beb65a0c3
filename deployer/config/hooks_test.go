package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hookProjects is releaseBase (app web of shop/web) with shop/web pinned to
// id 9 and given its own secret from the environment, and shop/site, whose
// .shipbot.yaml is not read, with a secret of its own.
const hookProjects = `projects:
  - path: shop/web
    id: 9
    webhookSecret: ${SHIPBOT_TEST_WEB_HOOK}
  - path: shop/site
    webhookSecret: site-secret
`

func TestHookProjectsLoad(t *testing.T) {
	t.Setenv("SHIPBOT_TEST_WEB_HOOK", "web-secret")
	cfg, err := Parse("shipbot.yaml", []byte(strings.Replace(releaseBase("", "        replicas: 2"), "    project: shop/web\n", "    project: shop/web\n    projectID: 9\n", 1)+hookProjects))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.HookProjects()
	if len(got) != 2 || got[0].Path != "shop/web" || got[0].ID != 9 || got[0].Secret.Value() != "web-secret" ||
		got[1].Path != "shop/site" || got[1].ID != 0 || got[1].Secret.Value() != "site-secret" {
		t.Errorf("HookProjects = %+v", got)
	}
	if id, ok := cfg.ProjectID("Shop/Web"); !ok || id != 9 {
		t.Errorf("ProjectID(shop/web) = %d, %v; want 9", id, ok)
	}
	// An entry without environments opens no .shipbot.yaml.
	if _, err := cfg.ParseRepo("shop/site", []byte("apps: []\n")); err == nil || !strings.Contains(err.Error(), "add it under projects") {
		t.Errorf("ParseRepo of a project with no environments: %v; want it refused", err)
	}
}

// TestAppPinnedByProjectID: an app's projectID pins its path without a
// projects[] entry.
func TestAppPinnedByProjectID(t *testing.T) {
	cfg, err := Parse("shipbot.yaml", []byte(strings.Replace(releaseBase("", "        replicas: 2"), "    project: shop/web\n", "    project: shop/web\n    projectID: 42\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := cfg.ProjectID("shop/web"); !ok || id != 42 {
		t.Errorf("ProjectID = %d, %v; want 42", id, ok)
	}
	if got := cfg.HookProjects(); len(got) != 1 || !got[0].Secret.IsZero() {
		t.Errorf("HookProjects = %+v; want shop/web with no secret of its own", got)
	}
}

// TestHookProjectErrors: every broken pin or secret is refused at its line.
func TestHookProjectErrors(t *testing.T) {
	// want is the error after "shipbot.yaml:<line>: ", line that of the
	// last line holding mark.
	cases := []struct{ name, app, projects, mark, want string }{
		{"negative id", "", "  - path: shop/web\n    id: -3\n", "id: -3", "projects[0].id: -3 is not a GitLab project id"},
		{"app pinned elsewhere", "    projectID: 10\n", "  - path: shop/web\n    id: 9\n", "projectID: 10",
			"apps[0].projectID: project shop/web is pinned to id 9 at projects[0].id"},
		{"one id, two paths", "", "  - path: shop/web\n    id: 9\n  - path: shop/api\n    id: 9\n", "id: 9",
			"projects[1].id: id 9 is project shop/web's (projects[0].id)"},
		{"the global secret", "", "  - path: shop/web\n    webhookSecret: s3cret\n", "webhookSecret: s3cret",
			"projects[0].webhookSecret: is gitlab.webhookSecret"},
		{"a shared secret", "", "  - path: shop/web\n    webhookSecret: one\n  - path: shop/api\n    webhookSecret: one\n", "webhookSecret: one",
			"projects[1].webhookSecret: is projects[0]'s (shop/web) too"},
		{"says nothing", "", "  - path: shop/web\n", "path: shop/web", "projects[0].environments: list the environments"},
		{"overrides but no environments", "", "  - path: shop/web\n    id: 9\n    allowedOverrides: [source]\n", "path: shop/web",
			"projects[0].environments: list the environments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(releaseBase("", "        replicas: 2"), "    project: shop/web\n", "    project: shop/web\n"+c.app, 1) + "projects:\n" + c.projects
			line := 0
			for i, l := range strings.Split(text, "\n") {
				if strings.Contains(l, c.mark) {
					line = i + 1
				}
			}
			want := fmt.Sprintf("shipbot.yaml:%d: %s", line, c.want)
			_, err := Parse("shipbot.yaml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s\nconfig:\n%s", err, want, text)
			}
		})
	}
}

// TestRepoMayNotPin: a .shipbot.yaml cannot pin its apps to an id.
func TestRepoMayNotPin(t *testing.T) {
	cfg := repoPolicy(t, sitePolicy)
	_, err := cfg.ParseRepo("shop/site", []byte("apps:\n  - name: site\n    projectID: 9\n    environments:\n      dev: {}\n"))
	if err == nil || !strings.Contains(err.Error(), ".shipbot.yaml:3: apps[0].projectID: a repository's apps belong to its own project; drop projectID") {
		t.Errorf("error: %v", err)
	}
}

func TestCommandsSettings(t *testing.T) {
	cfg, err := Parse("shipbot.yaml", []byte(releaseBase("", "        replicas: 2")))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Commands; c.Timeout.Duration != 30*time.Second || c.PerUserPerMinute != 10 || c.Burst != 5 {
		t.Errorf("defaults: %+v", c)
	}
	text := releaseBase("", "        replicas: 2") + "commands:\n  timeout: 0.1s\n  perUserPerMinute: -1\n"
	_, err = Parse("shipbot.yaml", []byte(text))
	for _, want := range []string{
		fmt.Sprintf("shipbot.yaml:%d: commands.timeout: 100ms is not from 1s to 10m", lineOfText(t, text, "timeout: 0.1s")),
		fmt.Sprintf("shipbot.yaml:%d: commands.perUserPerMinute: must be from 1 to 600, got -1", lineOfText(t, text, "perUserPerMinute")),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain\n%s", err, want)
		}
	}
}

package config

import (
	"errors"
	"strings"
	"testing"
)

// repoPolicy is releaseBase with project shop/site, whose .shipbot.yaml
// may deploy to dev and set its source and replicas.
func repoPolicy(t *testing.T, policy string) *Config {
	t.Helper()
	cfg, err := Parse("shipbot.yaml", []byte(releaseBase("", "        replicas: 2")+policy))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const sitePolicy = `projects:
  - path: shop/site
    environments: [dev]
    allowedOverrides: [source, params.replicas]
`

func TestRepoAppsLoad(t *testing.T) {
	cfg := repoPolicy(t, sitePolicy)
	apps, err := cfg.ParseRepo("shop/site", []byte(`apps:
  - name: site
    source:
      helm: {chart: deploy/chart, valuesFiles: [deploy/values.yaml]}
    params: {replicas: 2}
    environments:
      dev: {replicas: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 {
		t.Fatalf("%d apps, want 1", len(apps))
	}
	a := apps[0]
	if a.Project != "shop/site" || !a.Source.FromRepo() || a.Image != DefaultImage || a.Trigger != TriggerPipeline {
		t.Errorf("app %+v: want project shop/site, a source from the repository and the defaults", a)
	}
	if p, _ := a.ParamsFor("dev"); p.Replicas == nil || *p.Replicas != 1 {
		t.Errorf("dev params %+v, want 1 replica", p)
	}
	if got := cfg.WithApps(apps); len(got.Apps) != 2 || len(cfg.Apps) != 1 {
		t.Errorf("WithApps: %d apps, and the config %d; want 2 and 1 unchanged", len(got.Apps), len(cfg.Apps))
	}
}

// TestProjectsIn: an environment's projects are those of shipbot.yaml's
// apps there and those whose .shipbot.yaml may deploy there.
func TestProjectsIn(t *testing.T) {
	cfg := repoPolicy(t, sitePolicy)
	for env, want := range map[string]string{"dev": "shop/site shop/web", "prod": "shop/web", "qa": ""} {
		if got := strings.Join(cfg.ProjectsIn(env), " "); got != want {
			t.Errorf("ProjectsIn(%s) = %q, want %q", env, got, want)
		}
	}
}

// TestRepoRefusals: each .shipbot.yaml that breaks the policy or fails
// validation is refused with the file, the line and the reason.
func TestRepoRefusals(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"forbidden environment", `apps:
  - name: site
    environments:
      dev: {}
      prod: {replicas: 3}
`, `.shipbot.yaml:5: apps[0].environments.prod: environment "prod" is not open to project shop/site's .shipbot.yaml (it may use dev)`},
		{"key not allowed", `apps:
  - name: site
    release: {strategy: canary, steps: [50, 100]}
    environments: {dev: {}}
`, `.shipbot.yaml:3: apps[0].release: project shop/site's .shipbot.yaml may not set release (allowedOverrides: params.replicas, source)`},
		{"param not allowed", `apps:
  - name: site
    environments:
      dev:
        env: {DEBUG: "1"}
`, `.shipbot.yaml:5: apps[0].environments.dev.env: project shop/site's .shipbot.yaml may not set params.env`},
		{"another project", `apps:
  - name: site
    project: shop/web
    environments: {dev: {}}
`, `.shipbot.yaml:3: apps[0].project: a repository's apps belong to its own project; drop project`},
		{"shipbot's disk", `apps:
  - name: site
    source: {from: local, manifests: {path: /etc}}
    environments: {dev: {}}
`, `.shipbot.yaml:3: apps[0].source.from: a repository's apps read the repository only`},
		{"path outside", `apps:
  - name: site
    source:
      manifests: {path: ../../etc}
    environments: {dev: {}}
`, `.shipbot.yaml:4: apps[0].source.manifests.path: "../../etc" is not a path in the repository`},
		{"a central app's name", `apps:
  - name: web
    environments: {dev: {}}
`, `.shipbot.yaml:2: apps[0].name: app "web" is declared by shipbot's config`},
		{"unknown key", `apps:
  - name: site
    replicas: 2
    environments: {dev: {}}
`, `.shipbot.yaml:3: unknown key "replicas" in app`},
		{"bad replicas", `apps:
  - name: site
    environments:
      dev: {replicas: -1}
`, `.shipbot.yaml:4: apps[0].environments.dev.replicas: must be 0 or more, got -1`},
	}
	cfg := repoPolicy(t, sitePolicy)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			apps, err := cfg.ParseRepo("shop/site", []byte(c.file))
			if err == nil {
				t.Fatalf("accepted %+v; want %q", apps, c.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("%v is not a *config.Error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, c.want)
			}
		})
	}
	if _, err := cfg.ParseRepo("shop/other", []byte("apps: []\n")); err == nil || !strings.Contains(err.Error(), "add it under projects") {
		t.Errorf("a project without a policy: %v", err)
	}
}

func TestProjectPolicyErrors(t *testing.T) {
	failsWith(t, releaseBase("", "        replicas: 2")+`projects:
  - path: shop/site
    environments: [dev, staging]
    allowedOverrides: [source, secrets]
    apps: [web]
`, []string{
		`f.yaml:28: projects[0].environments[1]: unknown environment "staging"`,
		`f.yaml:29: projects[0].allowedOverrides[1]: "secrets" is not one of source, params`,
		`f.yaml:30: projects[0].apps[0]: app "web" is already declared under apps`,
	})
}

// FuzzParseRepo: no .shipbot.yaml makes the parser panic, and whatever it
// accepts keeps to the policy's environments.
func FuzzParseRepo(f *testing.F) {
	f.Add([]byte("apps:\n  - name: site\n    environments: {dev: {replicas: 1}}\n"))
	f.Add([]byte("apps:\n  - name: site\n    environments: {prod: {}}\n"))
	f.Add([]byte("apps: [{name: x, source: {helm: {chart: c}}, environments: {dev: {}}}]"))
	cfg, err := Parse("shipbot.yaml", []byte(releaseBase("", "        replicas: 2")+sitePolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		apps, err := cfg.ParseRepo("shop/site", data)
		if err != nil {
			return
		}
		for _, a := range apps {
			for env := range a.Environments {
				if env != "dev" {
					t.Fatalf("accepted environment %q", env)
				}
			}
		}
	})
}

// TestRepoRemoteChartsNeedAChartSource: a repository allowed to set its
// source may download a chart only from under the prefixes its project's
// chartSources lists, on a path boundary; without any, from nowhere.
func TestRepoRemoteChartsNeedAChartSource(t *testing.T) {
	file := func(helm string) []byte {
		return []byte("apps:\n  - name: site\n    source:\n      helm: " + helm + "\n    environments: {dev: {}}\n")
	}
	open := repoPolicy(t, sitePolicy+"    chartSources: [https://charts.example.com/team/, oci://registry.example.com/charts]\n")
	for _, ok := range []string{
		"{chart: web, repository: https://charts.example.com/team, version: 1.0.0}",
		"{chart: web, repository: https://charts.example.com/team/stable, version: 1.0.0}",
		"{chart: oci://registry.example.com/charts/web, version: 1.0.0}",
		"{chart: deploy/chart}",
	} {
		if _, err := open.ParseRepo("shop/site", file(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, c := range []struct{ helm, want string }{
		{"{chart: web, repository: https://charts.example.com/team-b, version: 1.0.0}",
			`.shipbot.yaml:4: apps[0].source.helm.repository: "https://charts.example.com/team-b" is not under a chart source project shop/site may download from (https://charts.example.com/team/, oci://registry.example.com/charts)`},
		{"{chart: oci://registry.example.com/chartsx/web, version: 1.0.0}",
			`.shipbot.yaml:4: apps[0].source.helm.chart: "oci://registry.example.com/chartsx/web" is not under`},
		{"{chart: web, repository: http://169.254.169.254/latest, version: 1.0.0}",
			`apps[0].source.helm.repository: "http://169.254.169.254/latest" is not under`},
	} {
		_, err := open.ParseRepo("shop/site", file(c.helm))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %s", c.helm, err, c.want)
		}
	}
	closed := repoPolicy(t, sitePolicy)
	_, err := closed.ParseRepo("shop/site", file("{chart: web, repository: https://charts.example.com/team, version: 1.0.0}"))
	if want := "(none: add the prefix under chartSources of projects[] for shop/site)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("without chartSources: error %v, want it to contain %s", err, want)
	}
}

func TestChartSourcesAreChecked(t *testing.T) {
	text := releaseBase("", "        replicas: 2") + `projects:
  - path: shop/site
    environments: [dev]
    allowedOverrides: [params]
    chartSources: [charts.example.com, "oci://"]
`
	_, err := Parse("shipbot.yaml", []byte(text))
	for _, want := range []string{
		`projects[0].chartSources[0]: "charts.example.com" is not an http(s):// chart repository or oci:// registry URL with a host`,
		`projects[0].chartSources[1]: "oci://" is not an http(s)://`,
		`projects[0].chartSources: only a project whose allowedOverrides include source can name a chart`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain\n%s", err, want)
		}
	}
}

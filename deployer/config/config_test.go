package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

const base = `
gitlab:
  baseURL: https://gitlab.example.com
  webhookSecret: s3cret
clusters:
  - name: local
    kubeconfig: /tmp/kubeconfig
environments:
  - name: dev
    clusters: [local]
    namespace: apps-dev
    refs:
      branches: ['^dev$']
apps:
  - name: web
    project: shop/web
    environments:
      dev: {}
`

func TestExampleLoads(t *testing.T) {
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "glpat-x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "hook-secret")
	cfg, err := Load("../../docs/examples/shipbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.GitLab.WebhookSecret.Value(); got != "hook-secret" {
		t.Errorf("webhook secret = %q, want it from the environment", got)
	}
	cases := []struct {
		env, ref  string
		tag, want bool
	}{
		{"dev", "dev", false, true},
		{"dev", "dev2", false, false},
		{"feature", "feature-login-v2", false, true},
		{"feature", "feature-", false, false},
		{"feature", "feature-Login", false, false},
		{"release", "release-1.4", false, true},
		{"release", "release-1.", false, false},
		{"prod1", "v1.4.0", true, true},
		{"prod2", "v1.4.0", true, true},
		{"prod1", "v1.4", true, false},
	}
	for _, c := range cases {
		e, ok := cfg.Environment(c.env)
		if !ok {
			t.Fatalf("no environment %s", c.env)
		}
		got := e.MatchBranch(c.ref)
		if c.tag {
			got = e.MatchTag(c.ref)
		}
		if got != c.want {
			t.Errorf("%s matches %q = %v, want %v", c.env, c.ref, got, c.want)
		}
	}
	web, _ := cfg.App("web")
	p, _ := web.ParamsFor("dev")
	if *p.Replicas != 1 || p.Env["LOG_LEVEL"] != "debug" || p.Ports[0].Port != 8080 || p.Resources.CPURequest != "100m" {
		t.Errorf("dev params not merged over app params: %+v", p)
	}
	img, err := web.ImageFor(ImageData{Project: "shop/web", ShortSHA: "abc12345"})
	if err != nil || img != "registry.example.com/shop/web:abc12345" {
		t.Errorf("image = %q, %v", img, err)
	}
	for _, env := range []string{"prod1", "prod2"} {
		s, ok := web.ReleaseFor(env)
		if !ok || s.Strategy != release.Canary || !slices.Equal(s.Steps, release.Weights(10, 50, 100)) || !slices.Equal(s.PauseAfter, []int{10, 50}) ||
			s.OnNewer != release.OnNewerQueue || len(s.Gates) != 1 || !strings.Contains(s.Gates[0].Prometheus.Query, `code=~"5.."`) {
			t.Errorf("ReleaseFor(%s) = %+v, %v; want the app's canary", env, s, ok)
		}
	}
	if _, ok := web.ReleaseFor("dev"); ok {
		t.Error("dev has a staged release; want plain deploys where no tags deploy")
	}
	if e, _ := cfg.Environment("prod2"); e.RequiredAccess() != AccessMaintainer {
		t.Errorf("prod2 requires %q, want maintainer", e.RequiredAccess())
	}
	if e, _ := cfg.Environment("dev"); e.RequiredAccess() != AccessDeveloper {
		t.Errorf("dev requires %q, want developer", e.RequiredAccess())
	}
}

// TestExampleOptionalSectionsLoad uncomments the example's optional
// sections ("# " lines after the chat heading; "## " lines are prose) so
// that what the file shows for them stays valid too.
func TestExampleOptionalSectionsLoad(t *testing.T) {
	for k, v := range map[string]string{
		"SHIPBOT_GITLAB_TOKEN": "x", "SHIPBOT_WEBHOOK_SECRET": "y", "SHIPBOT_API_TOKEN": "api-token-of-at-least-thirty-two-bytes",
		"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "sign", "DINGTALK_WEBHOOK_URL": "https://oapi.dingtalk.com/robot/send?access_token=t",
		"DINGTALK_SECRET": "SEC1", "SHIPBOT_LINK_SECRET": strings.Repeat("0", 64), "AUDIT_WEBHOOK_URL": "https://audit.example.com/in", "AUDIT_WEBHOOK_SECRET": "hmac",
		"SHIPBOT_DASHBOARD_TOKEN": strings.Repeat("d", 32), "SHIPBOT_GITLAB_CLIENT_ID": "app-id",
		"SHIPBOT_GITLAB_CLIENT_SECRET": "app-secret", "SHIPBOT_SESSION_KEY": strings.Repeat("s", 64),
	} {
		t.Setenv(k, v)
	}
	b, err := os.ReadFile("../../docs/examples/shipbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head, optional, ok := strings.Cut(string(b), "## Chat, API and notifications")
	if !ok {
		t.Fatal("the example has no optional chat section")
	}
	var out strings.Builder
	for _, l := range strings.Split(optional, "\n") {
		if !strings.HasPrefix(l, "##") {
			l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
		}
		out.WriteString(l + "\n")
	}
	cfg, err := Parse("example.yaml", []byte(head+"#"+out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Token.Value() != "api-token-of-at-least-thirty-two-bytes" || cfg.Slack == nil || cfg.Slack.Mode != SlackModeHTTP || cfg.DingTalk == nil ||
		len(cfg.Notify.Webhooks) != 1 || len(cfg.Users) != 2 || cfg.Dashboard == nil || cfg.Dashboard.Access != DashboardToken ||
		cfg.SignIn == nil || cfg.DingTalk.Identity != IdentityGitLab {
		t.Errorf("optional sections not all loaded: %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("shipbot.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Apps[0]
	if cfg.Listen != ":8080" || a.Trigger != TriggerPipeline || a.Image != DefaultImage || a.Template != "web-service" || cfg.Webhook.MaxBodyBytes != 5<<20 {
		t.Errorf("defaults not applied: listen=%q app=%+v", cfg.Listen, a)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Setenv("HOOK", "very-secret-value")
	cfg, err := Parse("f.yaml", []byte(strings.Replace(base, "s3cret", "${HOOK}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cfg.GitLab.WebhookSecret.String(), fmt.Sprintf("%v %+v", cfg.GitLab, cfg)} {
		if strings.Contains(s, "very-secret-value") {
			t.Errorf("secret leaked: %s", s)
		}
	}
	if cfg.GitLab.WebhookSecret.String() != "(from $HOOK)" {
		t.Errorf("String() = %q", cfg.GitLab.WebhookSecret.String())
	}
}

// TestErrors checks that each kind of mistake is reported with the file, the
// line it is on and a message that says what to do.
func TestErrors(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"unknown key", "    namespace: apps-dev", "    namespace: apps-dev\n    namespce: x", []string{"f.yaml:12:", `unknown key "namespce" in environment`}},
		{"bad regex", "'^dev$'", "'^dev($'", []string{"f.yaml:13:", "environments[0].refs.branches[0]", "bad regular expression"}},
		{"unknown cluster", "clusters: [local]", "clusters: [locl]", []string{"f.yaml:10:", `unknown cluster "locl"`}},
		{"unknown env", "      dev: {}", "      dve: {}", []string{"f.yaml:18:", `unknown environment "dve"`}},
		{"bad namespace", "apps-dev", "Apps_Dev", []string{"f.yaml:11:", "not a valid namespace"}},
		{"bad duration", "    project: shop/web", "    project: shop/web\n    rolloutTimeout: soon", []string{"f.yaml:17:", "not a duration"}},
		{"wrong type", "      dev: {}", "      dev: {replicas: many}", []string{"f.yaml:18:", "cannot unmarshal"}},
		{"negative replicas", "      dev: {}", "      dev: {replicas: -1}", []string{"f.yaml:18:", "must be 0 or more"}},
		{"bad image template", "    project: shop/web", "    project: shop/web\n    image: '{{.Sha}}'", []string{"f.yaml:17:", "bad image template"}},
		{"no secret", "  webhookSecret: s3cret\n", "", []string{"f.yaml:2:", "webhookSecret: required"}},
		{"missing env var", "s3cret", "${SHIPBOT_TEST_UNSET_VAR}", []string{"f.yaml:4:", "SHIPBOT_TEST_UNSET_VAR is not set"}},
		{"duplicate env", "apps:", "  - name: dev\n    clusters: [local]\n    namespace: x\n    refs: {mergeRequests: true}\napps:", []string{"f.yaml:14:", `duplicate name "dev"`}},
		{"bad trigger", "    project: shop/web", "    project: shop/web\n    trigger: merge", []string{"f.yaml:17:", `"merge" is not one of pipeline, push`}},
		{"no ref rules", "    refs:\n      branches: ['^dev$']\n", "", []string{"f.yaml:", "has no ref rules"}},
		{"bad yaml", "apps:", "apps: [", []string{"f.yaml:", "line"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(base, c.old, c.new, 1)
			if text == base {
				t.Fatalf("case does not change the config: %q not found", c.old)
			}
			_, err := Parse("f.yaml", []byte(text))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile("../../docs/examples/shipbot.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without an error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// failsWith parses text and wants each of want in the error, and nothing
// that says "leaked": the tests' credentials do, and errors must not echo them.
func failsWith(t *testing.T, text string, want []string) {
	t.Helper()
	_, err := Parse("f.yaml", []byte(text))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "leaked") {
		t.Errorf("error echoes a secret: %v", err)
	}
}

// sourceApp is base with src, indented under the app, after its project
// line; src's own environments replace base's.
func sourceApp(src string) string {
	text := base
	if strings.Contains(src, "    environments:") {
		text = strings.Replace(text, "    environments:\n      dev: {}\n", "", 1)
	}
	return strings.Replace(text, "    project: shop/web\n", "    project: shop/web\n"+src, 1)
}

func TestSources(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(sourceApp(`    source:
      helm:
        chart: charts/web
        valuesFiles: [charts/web/values-common.yaml]
        values: {image: {pullPolicy: Always}, ingress: {enabled: true}}
        imageValues: {repository: app.image.name, tag: app.image.version}
        replicasValue: app.replicas
    params: {replicas: 2}
    environments:
      dev:
        replicas: 1
        helm:
          valuesFiles: [charts/web/values-dev.yaml]
          values: {ingress: {enabled: false}}
`)))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Apps[0]
	h := a.Source.Helm
	if a.Source.Kind() != SourceHelm || h.Chart != "charts/web" || h.ImageValues.Tag != "app.image.version" || h.ReplicasValue != "app.replicas" || a.Template != "" {
		t.Errorf("source = %+v, helm %+v", a.Source, h)
	}
	if e := a.Environments["dev"]; e.Helm == nil || e.Helm.ValuesFiles[0] != "charts/web/values-dev.yaml" || *e.Replicas != 1 {
		t.Errorf("dev = %+v", e)
	}

	for _, src := range []string{"    template: web-service\n", "    source: {template: web-service}\n", ""} {
		cfg, err := Parse("f.yaml", []byte(sourceApp(src)))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if s := cfg.Apps[0].Source; s.Kind() != SourceTemplate || s.Template != "web-service" {
			t.Errorf("%q: source %+v, want the built-in web-service", src, s)
		}
	}
	cfg, err = Parse("f.yaml", []byte(sourceApp("    templateDir: ./deploy/templates\n")))
	if err != nil || cfg.Apps[0].Source.TemplateDir != "./deploy/templates" || !cfg.Apps[0].Source.IsTemplate() {
		t.Errorf("templateDir shorthand: %+v, %v", cfg.Apps[0].Source, err)
	}
}

// TestSourceErrors: an app's source is one of five kinds, written one way,
// and what a kind would ignore is refused where it is written.
func TestSourceErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"both forms", "    template: web-service\n    source: {helm: {chart: c}}\n",
			[]string{"f.yaml:18:", "apps[0].source:", `app "web" sets source and the shorthand template/templateDir; keep one`}},
		{"both forms, templateDir", "    templateDir: t\n    source: {templateDir: t}\n", []string{"apps[0].source:", "keep one"}},
		{"two kinds", "    source:\n      helm: {chart: c}\n      kustomize: {path: k}\n",
			[]string{"f.yaml:17:", "apps[0].source:", `app "web" has a source of 2 kinds (helm, kustomize); give exactly one of template, templateDir, helm, kustomize, manifests`}},
		{"two kinds, shorthand", "    template: web-service\n    templateDir: t\n", []string{"apps[0]:", "2 kinds (template, templateDir)"}},
		{"empty source", "    source: {}\n", []string{"apps[0].source:", "empty source"}},
		{"missing chart", "    source:\n      helm: {valuesFiles: [v.yaml]}\n", []string{"f.yaml:18:", "apps[0].source.helm.chart: required: the chart's folder"}},
		{"empty values file", "    source:\n      helm: {chart: c, valuesFiles: ['']}\n", []string{"apps[0].source.helm.valuesFiles[0]: empty file name"}},
		{"missing kustomize path", "    source: {kustomize: {imageName: x}}\n", []string{"apps[0].source.kustomize.path: required"}},
		{"missing manifests path", "    source: {manifests: {}}\n", []string{"apps[0].source.manifests.path: required"}},
		{"unknown built-in", "    source: {template: api-service}\n", []string{"apps[0].source.template:", `no built-in template "api-service"`}},
		{"unknown built-in, shorthand", "    template: api-service\n", []string{"apps[0].template:", `no built-in template "api-service"`}},
		{"unknown helm key", "    source: {helm: {chart: c, value: {}}}\n", []string{"f.yaml:17:", `unknown key "value" in helm source`}},
		{"template params for helm", "    source: {helm: {chart: c}}\n    params: {ports: [{port: 80}], values: {a: 1}}\n",
			[]string{"apps[0].params.ports: only templates read ports; with a helm source, set it there", "apps[0].params.values: helm values go under source.helm.values"}},
		{"template params for kustomize, per environment", "    source: {kustomize: {path: k}}\n    environments:\n      dev: {host: web.example.com}\n",
			[]string{"apps[0].environments.dev.host: only templates read host; with a kustomize source"}},
		{"helm values without helm", "    source: {manifests: {path: m}}\n    environments:\n      dev: {helm: {values: {a: 1}}}\n",
			[]string{"apps[0].environments.dev.helm:", `app "web" has no helm source`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(sourceApp(c.src)))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Two files that say the same are the same config, whatever their names
// and bytes (a comment); their sums differ. One that says more is not.
func TestSameAsComparesWhatTheFileSays(t *testing.T) {
	a, err := Parse("a.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", []byte("# the same, with a comment\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if !a.SameAs(b) || a.Sum() == b.Sum() {
		t.Errorf("a comment apart: SameAs %v, sums equal %v; want the same config of different bytes", a.SameAs(b), a.Sum() == b.Sum())
	}
	c, err := Parse("a.yaml", []byte(strings.Replace(base, "s3cret", "other", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a.SameAs(c) {
		t.Error("configs with different webhook secrets are the same")
	}
}

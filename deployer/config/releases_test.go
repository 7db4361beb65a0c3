package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// releaseBase has a production environment fed by tags; app and prod are
// where a test puts the app's release spec and prod's settings, indented
// as under "  - name: web" and "      prod:".
func releaseBase(app, prod string) string {
	return `gitlab:
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
  - name: prod
    clusters: [local]
    namespace: apps
    refs:
      tags: ['^v\d+\.\d+\.\d+$']
apps:
  - name: web
    project: shop/web
` + app + `
    environments:
      dev: {}
      prod:
` + prod + "\n"
}

// lineOfText is the 1-based line of the first line containing s.
func lineOfText(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in config", s)
	return 0
}

func TestReleaseBadStepsPointAtTheItem(t *testing.T) {
	cases := []struct {
		steps []int
		bad   int // index of the offending item
		want  []string
	}{
		{[]int{50, 10, 100}, 1, []string{`apps[0].release.steps[1]: Invalid value: 10: must be greater than the step before it (50) (app "web")`}},
		{[]int{10, 50}, 1, []string{`apps[0].release.steps[1]: Invalid value: 50: the last step must be 100 (app "web")`}},
		{[]int{0, 100}, 0, []string{`apps[0].release.steps[0]: Invalid value: 0: must be between 1 and 100 (app "web")`}},
		{[]int{10, 50, 101}, 2, []string{
			`apps[0].release.steps[2]: Invalid value: 101: must be between 1 and 100 (app "web")`,
			`apps[0].release.steps[2]: Invalid value: 101: the last step must be 100 (app "web")`}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.steps), func(t *testing.T) {
			var items strings.Builder
			for _, s := range c.steps {
				fmt.Fprintf(&items, "\n        - %d", s)
			}
			text := releaseBase("    release:\n      strategy: canary\n      steps:"+items.String(), "        replicas: 3")
			_, err := Parse("f.yaml", []byte(text))
			if err == nil {
				t.Fatal("want an error")
			}
			line := lineOfText(t, text, "steps:") + 1 + c.bad
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(c.want) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(c.want))
			}
			for i, w := range c.want {
				if want := fmt.Sprintf("f.yaml:%d: %s", line, w); got[i] != want {
					t.Errorf("error %d =\n  %s\nwant\n  %s", i, got[i], want)
				}
			}
		})
	}
}

func TestReleaseEnvironmentSpecErrorsPointIntoIt(t *testing.T) {
	prod := `        release:
          strategy: canary
          steps: [10, 100]
          progressDeadline: 10m
          gates:
            - name: errors
              prometheus:
                address: http://prometheus:9090
                op: "<"
                threshold: 0.01`
	text := releaseBase("", prod)
	_, err := Parse("f.yaml", []byte(text))
	// query is missing, so the line is its parent's.
	want := fmt.Sprintf(`f.yaml:%d: apps[0].environments.prod.release.gates[0].prometheus.query: Required value (app "web", environment "prod")`, lineOfText(t, text, "prometheus:"))
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
	text = strings.Replace(text, "op: \"<\"", "op: \"<\"\n                query: up", 1)
	text = strings.Replace(text, "address: http://prometheus:9090", "address: prometheus:9090", 1)
	_, err = Parse("f.yaml", []byte(text))
	want = fmt.Sprintf(`f.yaml:%d: apps[0].environments.prod.release.gates[0].prometheus.address: Invalid value: "<redacted>": must be an absolute http or https URL (app "web", environment "prod")`, lineOfText(t, text, "address:"))
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

func TestReleaseSpecErrors(t *testing.T) {
	cases := []struct {
		name, app string
		want      []string
	}{
		{"bad onNewer", "    release: {strategy: rolling, onNewer: replace}",
			[]string{"f.yaml:21:", "apps[0].release.onNewer", `Unsupported value: "replace"`, `"queue", "supersede"`}},
		{"bad duration", "    release:\n      strategy: rolling\n      progressDeadline: 5 minutes",
			[]string{"f.yaml:23:", `"5 minutes" is not a duration such as 90s or 5m`}},
		{"bare number duration", "    release:\n      strategy: rolling\n      progressDeadline: 300",
			[]string{"f.yaml:23:", `"300" is not a duration`}},
		{"bad gate interval", "    release:\n      strategy: canary\n      steps: [100]\n      gates:\n        - name: smoke\n          http: {url: 'https://hook', interval: often}",
			[]string{"f.yaml:26:", `"often" is not a duration`}},
		{"unknown key", "    release:\n      strategy: canary\n      stpes: [10, 100]",
			[]string{"f.yaml:23:", `unknown key "stpes" in release`}},
		{"unknown gate key", "    release:\n      strategy: canary\n      steps: [100]\n      gates:\n        - name: smoke\n          http: {url: 'https://hook', retries: 3}",
			[]string{"f.yaml:26:", `unknown key "retries" in http gate`}},
		{"no strategy", "    release:\n      steps: [100]",
			[]string{"f.yaml:21:", "apps[0].release.strategy: Required value"}},
		{"pause after a missing step", "    release:\n      strategy: canary\n      steps: [10, 100]\n      pauseAfter: [50]",
			[]string{"f.yaml:24:", "apps[0].release.pauseAfter[0]: Invalid value: 50: is not one of the steps"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(releaseBase(c.app, "        replicas: 3")))
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

func TestReleaseStrategiesLoad(t *testing.T) {
	specs := map[release.Strategy]string{
		release.Canary: `strategy: canary
      steps: [10, 50, 100]
      pauseAfter: [10, 50]
      virtualService: web
      progressDeadline: 5m
      onNewer: supersede
      gates:
        - name: error-rate
          onFailure: pause
          prometheus:
            address: http://prometheus:9090
            query: sum(rate(http_requests_total{code=~"5.."}[1m]))
            op: "<"
            threshold: 0.01
            interval: 1m
            duration: 5m
        - name: smoke
          when: before
          steps: [50]
          http: {url: "https://hooks.example.com/smoke", timeout: 2m, interval: 10s}`,
		release.Groups:    "strategy: groups\n      steps: [25, 50, 100]\n      replicas: 8\n      minAvailable: 6",
		release.BlueGreen: "strategy: blue-green\n      pauseAfter: [100]",
		release.Rolling:   "strategy: rolling\n      steps: [100]",
	}
	for strategy, spec := range specs {
		t.Run(string(strategy), func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(releaseBase("    release:\n      "+spec, "        replicas: 3")))
			if err != nil {
				t.Fatal(err)
			}
			web, _ := cfg.App("web")
			s, ok := web.ReleaseFor("prod")
			if !ok || s.Strategy != strategy {
				t.Fatalf("ReleaseFor(prod) = %+v, %v", s, ok)
			}
			if strategy != release.Canary {
				if s.OnNewer != release.OnNewerQueue {
					t.Errorf("onNewer = %q, want the default queue", s.OnNewer)
				}
				return
			}
			if s.ProgressDeadline != 5*time.Minute || s.Gates[0].Prometheus.Duration != 5*time.Minute || s.Gates[1].HTTP.Timeout != 2*time.Minute {
				t.Errorf("durations not decoded: %+v", s)
			}
			if !s.OnNewer.Supersedes() || !slices.Equal(s.PauseAfter, []int{10, 50}) {
				t.Errorf("spec = %+v", s)
			}
		})
	}
}

func TestReleaseForPrefersTheEnvironment(t *testing.T) {
	app := "    release:\n      strategy: canary\n      steps: [10, 50, 100]"
	prod := "        replicas: 3\n        release:\n          strategy: groups\n          steps: [50, 100]"
	cfg, err := Parse("f.yaml", []byte(releaseBase(app, prod)))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.App("web")
	if s, ok := web.ReleaseFor("prod"); !ok || s.Strategy != release.Groups || !slices.Equal(s.Steps, release.Weights(50, 100)) || s.OnNewer != release.OnNewerQueue {
		t.Errorf("ReleaseFor(prod) = %+v, %v; want the environment's groups spec", s, ok)
	}
	if s, ok := web.ReleaseFor("dev"); ok {
		t.Errorf("ReleaseFor(dev) = %+v; dev has no tag rules, so the app's spec does not apply", s)
	}
	if _, ok := web.ReleaseFor("staging"); ok {
		t.Error("ReleaseFor(staging) = ok for an environment the app does not list")
	}
	if p, ok := web.ParamsFor("prod"); !ok || p.Replicas == nil || *p.Replicas != 3 {
		t.Errorf("ParamsFor(prod) = %+v, %v; params beside release are lost", p, ok)
	}

	// An environment's own spec applies even without tag rules.
	text := strings.Replace(releaseBase(app, prod), "      dev: {}", "      dev:\n        release: {strategy: rolling}", 1)
	if cfg, err = Parse("f.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	web, _ = cfg.App("web")
	if s, ok := web.ReleaseFor("dev"); !ok || s.Strategy != release.Rolling {
		t.Errorf("ReleaseFor(dev) = %+v, %v; want dev's own rolling spec", s, ok)
	}

	cfg, err = Parse("f.yaml", []byte(releaseBase("", "        replicas: 3")))
	if err != nil {
		t.Fatal(err)
	}
	web, _ = cfg.App("web")
	if s, ok := web.ReleaseFor("prod"); ok {
		t.Errorf("ReleaseFor(prod) = %+v without any spec; want a plain deploy", s)
	}
}

func TestFieldPath(t *testing.T) {
	cases := map[string][]any{
		"":                            nil,
		"steps":                       {"steps"},
		"steps[2]":                    {"steps", 2},
		"gates[0].prometheus.address": {"gates", 0, "prometheus", "address"},
		"a[1][2].b[key]":              {"a", 1, 2, "b", "key"},
	}
	for in, want := range cases {
		if got := fieldPath(in); !slices.Equal(got, want) {
			t.Errorf("fieldPath(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestEnvironmentAccess(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(releaseBase("", "        replicas: 3")))
	if err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]string{"dev": AccessDeveloper, "prod": AccessMaintainer} {
		if e, _ := cfg.Environment(env); e.RequiredAccess() != want || e.Access != want {
			t.Errorf("%s requires %q (access %q), want %q", env, e.RequiredAccess(), e.Access, want)
		}
	}
	text := strings.Replace(releaseBase("", "        replicas: 3"), "    namespace: apps\n", "    namespace: apps\n    access: owner\n", 1)
	if cfg, err = Parse("f.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	if e, _ := cfg.Environment("prod"); e.RequiredAccess() != AccessOwner {
		t.Errorf("prod requires %q, want owner as written", e.RequiredAccess())
	}
	text = strings.Replace(text, "access: owner", "access: admin", 1)
	_, err = Parse("f.yaml", []byte(text))
	if want := `f.yaml:16: environments[1].access: "admin" is not one of developer, maintainer, owner`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestReleaseForBuiltInCode(t *testing.T) {
	// An App built in code rather than loaded has no tag information; the
	// app's spec then covers every environment it lists.
	spec := &release.Spec{Strategy: release.Rolling}
	a := App{Release: spec, Environments: map[string]AppEnvironment{"prod": {}}}
	if s, ok := a.ReleaseFor("prod"); !ok || s.Strategy != release.Rolling {
		t.Errorf("ReleaseFor(prod) = %+v, %v", s, ok)
	}
}

func TestReleaseScaleDownDelayAndRevisionHistory(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(releaseBase("    release:\n      strategy: canary\n      steps: [10, 100]\n      scaleDownDelay: 1m\n      revisionHistory: 5",
		"        release: {strategy: blue-green, scaleDownDelay: 0s, revisionHistory: 0}")))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.App("web")
	if s := web.Release; s.ScaleDownDelay == nil || *s.ScaleDownDelay != time.Minute || s.RevisionHistory == nil || *s.RevisionHistory != 5 {
		t.Errorf("app spec %+v, want scaleDownDelay 1m and revisionHistory 5", s)
	}
	// 0 is set, not left out: it means at once, and keep none.
	if s, _ := web.ReleaseFor("prod"); s.ScaleDownDelay == nil || *s.ScaleDownDelay != 0 || s.RevisionHistory == nil || *s.RevisionHistory != 0 {
		t.Errorf("prod's spec %+v, want both 0 as written", s)
	}
	if cfg, err = Parse("f.yaml", []byte(releaseBase("    release: {strategy: canary, steps: [100]}", "        replicas: 3"))); err != nil {
		t.Fatal(err)
	}
	web, _ = cfg.App("web")
	if s := web.Release; s.ScaleDownDelay != nil || s.RevisionHistory != nil {
		t.Errorf("unset: %+v, want nil so the release's defaults apply", s)
	}
}

func TestReleaseNegativeScaleDownDelayOrRevisionHistory(t *testing.T) {
	cases := []struct {
		name, app, prod string
		want            string
	}{
		{"app delay", "    release:\n      strategy: canary\n      steps: [100]\n      scaleDownDelay: -30s", "        replicas: 3",
			`f.yaml:24: apps[0].release.scaleDownDelay: Invalid value: "-30s": must not be negative; 0 scales down at once (app "web")`},
		{"environment history", "", "        release:\n          strategy: blue-green\n          revisionHistory: -1",
			`f.yaml:27: apps[0].environments.prod.release.revisionHistory: Invalid value: -1: must not be negative; 0 keeps no old Deployment (app "web", environment "prod")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(releaseBase(c.app, c.prod)))
			if err == nil || err.Error() != c.want {
				t.Errorf("error = %v\nwant    %s", err, c.want)
			}
		})
	}
}

func TestReleaseCanaryScale(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(releaseBase("    release: {strategy: canary, steps: [10, 100], canaryScale: matchTraffic}",
		"        release: {strategy: canary, steps: [100]}")))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := cfg.App("web")
	if s := web.Release; s.CanaryScale != release.CanaryScaleMatchTraffic {
		t.Errorf("app's canaryScale %q, want matchTraffic as written", s.CanaryScale)
	}
	// Spelled out, so that what is displayed is what applies.
	if s, _ := web.ReleaseFor("prod"); s.CanaryScale != release.CanaryScaleFull {
		t.Errorf("prod's canaryScale %q, want full, the default", s.CanaryScale)
	}
	var r release.Release
	web.Release.Configure(&r)
	if r.CanaryScale != release.CanaryScaleMatchTraffic {
		t.Errorf("configured release has canaryScale %q, want matchTraffic", r.CanaryScale)
	}
}

func TestReleaseCanaryScaleErrors(t *testing.T) {
	cases := []struct {
		name, app, prod string
		want            string
	}{
		{"groups", "    release:\n      strategy: groups\n      steps: [50, 100]\n      canaryScale: matchTraffic", "        replicas: 3",
			`f.yaml:24: apps[0].release.canaryScale: Invalid value: "matchTraffic": only a canary sizes its new version by weight; groups already runs each version at its step's share of the replicas (app "web")`},
		{"blue-green", "", "        release:\n          strategy: blue-green\n          canaryScale: full",
			`f.yaml:27: apps[0].environments.prod.release.canaryScale: Invalid value: "full": only a canary sizes its new version by weight; blue-green runs the new version at full size before it switches (app "web", environment "prod")`},
		{"unknown value", "    release:\n      strategy: canary\n      steps: [100]\n      canaryScale: half", "        replicas: 3",
			`f.yaml:24: apps[0].release.canaryScale: Unsupported value: "half": supported values: "full", "matchTraffic" (app "web")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(releaseBase(c.app, c.prod)))
			if err == nil || err.Error() != c.want {
				t.Errorf("error = %v\nwant    %s", err, c.want)
			}
		})
	}
}

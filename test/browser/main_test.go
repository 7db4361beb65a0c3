package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

// TestMain starts the control plane only when there is a browser to look
// at it with; otherwise the test says why it cannot run.
func TestMain(m *testing.M) {
	if _, err := findChromium(); err != nil {
		os.Exit(m.Run())
	}
	cluster.Main(m, cluster.Options{Istio: true}, &kc)
}

// findChromium finds the browser: SHIPBOT_CHROMIUM, else Debian's chromium
// or another Chromium on PATH.
func findChromium() (string, error) {
	if p := os.Getenv("SHIPBOT_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on PATH (apt-get install chromium chromium-driver, or set SHIPBOT_CHROMIUM)")
}

// requireChromium returns the browser's path. Without one the test skips,
// but fails under CI=true: CI installs it, so its absence is a broken setup,
// not a reason to pass.
func requireChromium(t *testing.T) string {
	t.Helper()
	p, err := findChromium()
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but the browser test cannot run: %v", err)
	}
	t.Skipf("skipping the browser test: %v", err)
	return ""
}

const (
	secret   = "browser-secret"
	apiToken = "browser-api-token-0123456789abcdef0123"
)

// rig is one shipbot with a dev and a prod namespace on the local cluster.
type rig struct {
	t      *testing.T
	m      *serve.Main
	devNS  string
	prodNS string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cluster.Require(t, kc)
	r := &rig{t: t, devNS: kc.NewNamespace(t), prodNS: kc.NewNamespace(t)}
	r.virtualService()
	cfg, err := config.Parse("browser.yaml", []byte(r.config(filepath.Join(t.TempDir(), "shipbot.db"))))
	if err != nil {
		t.Fatal(err)
	}
	r.m = &serve.Main{Config: cfg, Log: testLogger(), ReleasePoll: 100 * time.Millisecond}
	if err := r.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.m.Close() })
	return r
}

// virtualService is the route the team had for web in prod before shipbot
// released it.
func (r *rig) virtualService() {
	r.t.Helper()
	ic, err := istio.NewForConfig(kc.RESTConfig())
	if err != nil {
		r.t.Fatal(err)
	}
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: r.prodNS}}
	proto.Merge(&vs.Spec, &v1alpha3.VirtualService{
		Hosts: []string{"web"},
		Http: []*v1alpha3.HTTPRoute{{Name: "web", Route: []*v1alpha3.HTTPRouteDestination{
			{Destination: &v1alpha3.Destination{Host: "web", Port: &v1alpha3.PortSelector{Number: 8080}}},
		}}},
	})
	if _, err := ic.NetworkingV1().VirtualServices(r.prodNS).Create(r.t.Context(), vs, metav1.CreateOptions{FieldManager: "team"}); err != nil {
		r.t.Fatal(err)
	}
}

// config is shipbot.yaml: web deploys dev on push to dev and releases to
// prod by tag through a three-stage canary; api's dev image cannot be
// pulled, so its deploys fail. The dashboard is open.
func (r *rig) config(store string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: %s}
api: {token: %s}
dashboard: {access: open}
store: {path: %s}
clusters:
  - {name: local, kubeconfig: %s}
environments:
  - {name: dev, clusters: [local], namespace: %s, refs: {branches: ['^dev$']}}
  - {name: prod, clusters: [local], namespace: %s, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.Ref}}"
    params:
      replicas: 2
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 10m, memoryRequest: 16Mi}
    release:
      strategy: canary
      steps: [10, 50, 100]
      pauseAfter: [10, 50]
    environments:
      dev: {}
      prod: {}
  - name: api
    project: shop/api
    registry: registry.invalid
    rolloutTimeout: 20s
    params:
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 10m, memoryRequest: 16Mi}
    environments:
      dev: {}
`, secret, apiToken, store, kc.KubeconfigPath(), r.devNS, r.prodNS)
}

func testLogger() *slog.Logger {
	if os.Getenv("SHIPBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (r *rig) url(path string) string { return "http://" + r.m.Addr() + path }

// pipeline posts GitLab's successful pipeline of ref, built from a commit
// whose sha is c repeated.
func (r *rig) pipeline(projectID int64, project, ref string, tag bool, c byte, id int64, user string) {
	r.t.Helper()
	body := fixtures.PipelineSuccess(r.t, fixtures.Build{ProjectID: projectID, Project: project, Ref: ref, Tag: tag,
		SHA: strings.Repeat(string(c), 40), PipelineID: id, Username: user})
	if code := fixtures.PostWebhook(r.t, r.m.Addr(), secret, "Pipeline Hook", body); code != http.StatusOK {
		r.t.Fatalf("pipeline %s: webhook answered %d", ref, code)
	}
}

// client reads the API as the CLI does.
func (r *rig) client() *api.Client {
	return &api.Client{Server: "http://" + r.m.Addr(), Token: apiToken, Actor: "alice"}
}

// waitDeployment waits for the newest deployment of app to env to end in want.
func (r *rig) waitDeployment(app, env, want string) {
	r.t.Helper()
	fixtures.Eventually(r.t, 90*time.Second, app+" to "+env+": "+want, func() error {
		p, err := r.client().Deployments(r.t.Context(), api.RecordQuery{App: app, Environment: env, Limit: 1})
		switch {
		case err != nil:
			return err
		case len(p.Items) == 0:
			return fmt.Errorf("no deployment yet")
		case string(p.Items[0].Status) != want:
			return fmt.Errorf("it is %s %s", p.Items[0].Status, p.Items[0].Reason)
		}
		return nil
	})
}

// waitRelease waits for the release of rev to prod to be in phase at stage.
func (r *rig) waitRelease(rev, phase string, stage int) api.Release {
	r.t.Helper()
	var found api.Release
	fixtures.Eventually(r.t, 90*time.Second, "release of "+rev+": "+phase, func() error {
		p, err := r.client().List(r.t.Context(), api.Query{Environment: "prod"})
		if err != nil {
			return err
		}
		for _, rel := range p.Items {
			if rel.To.Name == rev {
				found = rel
				if string(rel.Phase) == phase && rel.Stage == stage {
					return nil
				}
				return fmt.Errorf("it is %s: %s", rel.Phase, rel.Summary)
			}
		}
		return fmt.Errorf("no release yet")
	})
	return found
}

// screenshotPath is docs/img/dashboard.png with SHIPBOT_SCREENSHOT=1, for
// the README; otherwise a file in the test's temp dir.
func screenshotPath(t *testing.T) string {
	if os.Getenv("SHIPBOT_SCREENSHOT") == "1" {
		return filepath.Join("..", "..", "docs", "img", "dashboard.png")
	}
	return filepath.Join(t.TempDir(), "dashboard.png")
}

// jsonOf is for failure messages.
func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// Package e2e runs shipbot end to end: the real Main on a loopback port, a
// real bbolt file and a real Kubernetes control plane from test/cluster.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Shipbot: true}, &kc) }

const (
	secret      = "e2e-secret"
	gitlabToken = "e2e-gitlab-token"
)

// env describes the one app and environment a test deploys.
type env struct {
	Namespace      string
	Image          string // image template
	RolloutTimeout string
	Trigger        string
	CPURequest     string
	StorePath      string
	// Source, when set, is the app's source, a YAML flow map.
	Source string
	// Previews, when set, turns merge request previews on against a fake GitLab.
	Previews *previewEnv
}

type previewEnv struct {
	GitLabURL string
	Prefix    string // namespace prefix, unique per test: namespaces are cluster-wide
	TTL       string
}

func (e env) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("e2e.yaml", []byte(e.yaml()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// yaml is the text of the env's shipbot.yaml.
func (e env) yaml() string {
	if e.Image == "" {
		e.Image = "{{.Registry}}/{{.Project}}:{{.ShortSHA}}"
	}
	if e.RolloutTimeout == "" {
		e.RolloutTimeout = "60s"
	}
	if e.Trigger == "" {
		e.Trigger = "pipeline"
	}
	if e.CPURequest == "" {
		e.CPURequest = "10m"
	}
	text := fmt.Sprintf(`
listen: 127.0.0.1:0
log: {level: debug}
gitlab:
  baseURL: http://127.0.0.1:1
  webhookSecret: %s
store:
  path: %s
clusters:
  - name: local
    kubeconfig: %s
environments:
  - name: dev
    clusters: [local]
    namespace: %s
    refs:
      branches: ['^dev$']
  - name: feature
    clusters: [local]
    namespace: %s
    refs:
      branches: ['^feature(-[a-z0-9]+)+$']
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: %q
    trigger: %s
    rolloutTimeout: %s
    params:
      replicas: 3
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: %s, memoryRequest: 16Mi}
    environments:
      dev: {}
`, secret, e.StorePath, kc.KubeconfigPath(), e.Namespace, e.Namespace, e.Image, e.Trigger, e.RolloutTimeout, e.CPURequest)
	if p := e.Previews; p != nil {
		text = strings.Replace(text, "  baseURL: http://127.0.0.1:1\n", "  baseURL: "+p.GitLabURL+"\n  token: "+gitlabToken+"\n", 1)
		text = strings.Replace(text, "apps:\n", `  - name: preview
    clusters: [local]
    refs: {mergeRequests: true}
apps:
`, 1)
		text += fmt.Sprintf(`      preview: {}
previews:
  domain: preview.test
  namespacePrefix: %s
  ttl: %s
  gcInterval: 1s
  quota: {cpu: "4", memory: 4Gi, pods: "10"}
`, p.Prefix, or(p.TTL, "0s"))
	}
	if e.Source != "" {
		text = strings.Replace(text, "    params:\n", "    source: "+e.Source+"\n    params:\n", 1)
	}
	return text
}

// newEnv gives a test its own namespace and store file.
func newEnv(t *testing.T) env {
	cluster.Require(t, kc)
	return env{Namespace: kc.NewNamespace(t), StorePath: filepath.Join(t.TempDir(), "shipbot.db")}
}

// start runs shipbot until the test ends.
func start(t *testing.T, cfg *config.Config) *serve.Main {
	t.Helper()
	return startAt(t, cfg, nil)
}

// startAt runs shipbot with a clock of the test's own (nil: the real one).
func startAt(t *testing.T, cfg *config.Config, now func() time.Time) *serve.Main {
	t.Helper()
	m := &serve.Main{Config: cfg, Log: testLogger(t), Now: now}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m.Store() != nil {
			m.Close()
		}
	})
	return m
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SHIPBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// post sends a webhook the way GitLab does.
func post(t *testing.T, m *serve.Main, event string, body []byte, headers ...string) int {
	t.Helper()
	return fixtures.PostWebhook(t, m.Addr(), secret, event, body, headers...)
}

// waitDone waits for n deployment records to finish and returns them all.
func waitDone(t *testing.T, st *store.Store, n int, within time.Duration) []store.Deployment {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		all, err := st.Deployments(nil)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range all {
			if !d.Status.Active() {
				done++
			}
		}
		if done >= n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d deployments finished: %+v", within, done, n, all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sha(c byte) string { return strings.Repeat(string(c), 40) }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Package releases runs staged releases end to end: tag pipeline webhooks
// into shipbot's real Main (or its real binary), on a real control plane
// with the Istio CRDs, checking what the apiserver holds after each stage.
package releases

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	istio "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true, Shipbot: true}, &kc) }

const (
	secret   = "release-secret"
	apiToken = "release-api-token-0123456789abcdef0123"
)

// rig is one test's namespaces (prod1 and prod2), store file and config.
type rig struct {
	t     *testing.T
	ns    map[string]string // environment → namespace
	path  string
	istio istio.Interface
}

func newRig(t *testing.T, envs ...string) *rig {
	t.Helper()
	cluster.Require(t, kc)
	ic, err := istio.NewForConfig(kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ns: map[string]string{}, path: filepath.Join(t.TempDir(), "shipbot.db"), istio: ic}
	for _, e := range envs {
		r.ns[e] = kc.NewNamespace(t)
		r.virtualService(e)
	}
	return r
}

// virtualService creates the VirtualService a team has for web before
// shipbot releases it: one route to the web Service.
func (r *rig) virtualService(env string) {
	r.t.Helper()
	if err := cluster.TeamVirtualService(context.Background(), r.istio, r.ns[env], "web"); err != nil {
		r.t.Fatal(err)
	}
}

// config writes shipbot.yaml for app web released to the rig's
// environments in order, each on its own cluster entry (two names for the
// one local control plane), with the release spec given as YAML.
func (r *rig) config(spec string) string {
	r.t.Helper()
	var clusters, envs, appEnvs strings.Builder
	for _, e := range []string{"prod1", "prod2"} {
		ns, ok := r.ns[e]
		if !ok {
			continue
		}
		fmt.Fprintf(&clusters, "  - {name: %s-cluster, kubeconfig: %s}\n", e, kc.KubeconfigPath())
		fmt.Fprintf(&envs, "  - {name: %s, clusters: [%s-cluster], namespace: %s, refs: {tags: ['^v\\d+\\.\\d+\\.\\d+$']}}\n", e, e, ns)
		fmt.Fprintf(&appEnvs, "      %s: {}\n", e)
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
log: {level: debug}
gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: %s}
api: {token: %s}
store: {path: %s}
clusters:
%senvironments:
%sapps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.Ref}}"
    params:
      replicas: 2
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 10m, memoryRequest: 16Mi}
    release:
%s
    environments:
%s`, secret, apiToken, r.path, clusters.String(), envs.String(), indent(spec, "      "), appEnvs.String())
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// start runs shipbot's Main in the test process until the test ends.
func (r *rig) start(text string) *serve.Main {
	r.t.Helper()
	cfg, err := config.Parse("releases.yaml", []byte(text))
	if err != nil {
		r.t.Fatal(err)
	}
	return r.run(cfg)
}

// run runs shipbot's Main with cfg until the test ends.
func (r *rig) run(cfg *config.Config) *serve.Main {
	r.t.Helper()
	m := &serve.Main{Config: cfg, Log: testLogger(), ReleasePoll: 100 * time.Millisecond}
	if err := m.Run(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if m.Store() != nil {
			m.Close()
		}
	})
	return m
}

func testLogger() *slog.Logger {
	if os.Getenv("SHIPBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// tag posts the successful pipeline of tag v (e.g. "v1.1.0") built from a
// commit whose sha is c repeated.
func tag(t *testing.T, addr, v string, c byte, pipeline int64) {
	t.Helper()
	body := fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: 9, Project: "shop/web", Ref: v, Tag: true,
		SHA: strings.Repeat(string(c), 40), PipelineID: pipeline, Username: "rel-manager"})
	if code := fixtures.PostWebhook(t, addr, secret, "Pipeline Hook", body); code != http.StatusOK {
		t.Fatalf("tag %s: webhook answered %d", v, code)
	}
}

// weights reads the VirtualService's route weights by subset.
func (r *rig) weights(env string) (map[string]int32, error) {
	return cluster.RouteWeights(context.Background(), r.istio, r.ns[env], "web")
}

// waitWeights waits for the route weights of env to be want.
func (r *rig) waitWeights(env string, want map[string]int32) {
	r.t.Helper()
	fixtures.Eventually(r.t, 60*time.Second, env+" weights", func() error {
		got, err := r.weights(env)
		if err == nil && !maps.Equal(got, want) {
			err = fmt.Errorf("weights %v, want %v", got, want)
		}
		return err
	})
}

// replicas reads the spec.replicas of web-<rev> in env; -1 when missing.
func (r *rig) replicas(env, rev string) int32 {
	d, err := kc.Client().AppsV1().Deployments(r.ns[env]).Get(context.Background(), "web-"+rev, metav1.GetOptions{})
	if err != nil {
		return -1
	}
	return *d.Spec.Replicas
}

// releases is what the test reads the engine's state through.
type releases interface {
	List(ctx context.Context, f release.Filter) ([]release.Release, error)
}

// waitRelease waits for the release of rev to env to satisfy cond.
func waitRelease(t *testing.T, rs releases, env, rev string, what string, cond func(release.Release) bool) release.Release {
	t.Helper()
	var found release.Release
	fixtures.Eventually(t, 60*time.Second, fmt.Sprintf("release of %s to %s: %s", rev, env, what), func() error {
		all, err := rs.List(context.Background(), release.Filter{Environment: env})
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.To.Name == rev {
				found = r
				if cond(r) {
					return nil
				}
				return fmt.Errorf("it is %s: %s", r.Phase, release.Describe(r, time.Now()))
			}
		}
		return fmt.Errorf("no release yet")
	})
	return found
}

// drained holds once a release has ended and owes no scale-down.
func drained(r release.Release) bool {
	return r.Phase.Terminal() && (r.Drain == nil || !r.Drain.Done.IsZero())
}

func pausedAt(stage int) func(release.Release) bool {
	return func(r release.Release) bool { return r.Phase == release.Paused && r.Stage == stage }
}

func phaseIs(p release.Phase) func(release.Release) bool {
	return func(r release.Release) bool { return r.Phase == p }
}

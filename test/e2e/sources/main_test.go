// Package sources deploys apps of each source kind (a Helm chart, a
// Kustomize overlay, a folder of plain manifests) end to end: webhooks into
// shipbot's real Main, on a real control plane with the Istio CRDs; a
// branch deploys to dev in one go, a tag is released by canary and then by
// blue-green, and the test reads what the apiserver holds after each stage.
package sources

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
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true}, &kc) }

const secret = "sources-secret"

// envs are the app's environments: dev takes branch dev in one go; a tag
// goes to canary, then, once that succeeded, to bluegreen.
var envs = []string{"dev", "canary", "bluegreen"}

// rig is one test's namespaces and store file, and its shipbot.
type rig struct {
	t     *testing.T
	ns    map[string]string // environment → namespace
	istio istio.Interface
	m     *serve.Main
	// current is the revision each released environment is at, whose
	// Deployment the test looks at.
	current map[string]string
}

// testdata is a path in the sources' own test data, as shipbot.yaml gives it.
func testdata(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("../../../templates/source/testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// start runs shipbot with app web rendered from source, a YAML block
// indented for the app, with bluegreen's more keys for the environment.
func start(t *testing.T, source, bluegreen string) *rig {
	t.Helper()
	return startWith(t, source, bluegreen, "{baseURL: http://127.0.0.1:1, webhookSecret: "+secret+"}", "")
}

// startWith is start with the config's gitlab section, and more top-level
// sections after the apps.
func startWith(t *testing.T, source, bluegreen, gitlab, more string) *rig {
	t.Helper()
	cluster.Require(t, kc)
	ic, err := istio.NewForConfig(kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ns: map[string]string{}, istio: ic}
	var envText strings.Builder
	for _, e := range envs {
		r.ns[e] = kc.NewNamespace(t)
		refs := `{tags: ['^v\d+\.\d+\.\d+$']}`
		if e == "dev" {
			refs = `{branches: ['^dev$']}`
		}
		fmt.Fprintf(&envText, "  - {name: %s, clusters: [local], namespace: %s, refs: %s}\n", e, r.ns[e], refs)
	}
	text := fmt.Sprintf(`listen: 127.0.0.1:0
gitlab: %s
store: {path: %s}
clusters:
  - {name: local, kubeconfig: %s}
environments:
%sapps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.Ref}}"
    rolloutTimeout: 60s
%s
    environments:
      dev: {replicas: 3}
      canary:
        replicas: 2
        release: {strategy: canary, steps: [50, 100], pauseAfter: [50], scaleDownDelay: 0s}
      bluegreen:
        replicas: 2
        release: {strategy: blue-green, pauseAfter: [100], scaleDownDelay: 0s}
%s%s`, gitlab, filepath.Join(t.TempDir(), "shipbot.db"), kc.KubeconfigPath(), envText.String(), source, bluegreen, more)
	cfg, err := config.Parse("sources.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r.m = &serve.Main{Config: cfg, Log: testLogger(), ReleasePoll: 100 * time.Millisecond}
	if err := r.m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.m.Store() != nil {
			r.m.Close()
		}
	})
	return r
}

func testLogger() *slog.Logger {
	if os.Getenv("SHIPBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// pipeline posts the successful pipeline of ref (a branch, or a tag such as
// v1.1.0) built from the commit whose sha is c repeated.
func (r *rig) pipeline(ref string, tag bool, c byte, id int64) {
	r.t.Helper()
	body := fixtures.PipelineSuccess(r.t, fixtures.Build{ProjectID: 9, Project: "shop/web", Ref: ref, Tag: tag,
		SHA: strings.Repeat(string(c), 40), PipelineID: id, Username: "rel-manager"})
	if code := fixtures.PostWebhook(r.t, r.m.Addr(), secret, "Pipeline Hook", body); code != http.StatusOK {
		r.t.Fatalf("pipeline of %s: webhook answered %d", ref, code)
	}
}

// deployDev deploys branch dev from commit c and returns its record once done.
func (r *rig) deployDev(c byte, id int64) store.Deployment {
	r.t.Helper()
	r.pipeline("dev", false, c, id)
	var d store.Deployment
	fixtures.Eventually(r.t, 90*time.Second, "dev deploy", func() error {
		all, err := r.m.Store().Deployments(func(d store.Deployment) bool { return d.PipelineID == id })
		if err != nil || len(all) == 0 {
			return fmt.Errorf("no record yet (%v)", err)
		}
		if d = all[0]; d.Status.Active() {
			return fmt.Errorf("it is %s", d.Status)
		}
		return nil
	})
	if d.Status != store.StatusSucceeded {
		r.t.Fatalf("dev deploy %s: %s (%s)", d.ID, d.Status, d.Reason)
	}
	return d
}

// waitRelease waits for the release of rev to env to satisfy cond.
func (r *rig) waitRelease(env, rev, what string, cond func(release.Release) bool) release.Release {
	r.t.Helper()
	var found release.Release
	fixtures.Eventually(r.t, 90*time.Second, fmt.Sprintf("release of %s to %s: %s", rev, env, what), func() error {
		all, err := r.m.Releases().List(context.Background(), release.Filter{Environment: env})
		if err != nil {
			return err
		}
		for _, rel := range all {
			if rel.To.Name == rev {
				if found = rel; cond(rel) {
					return nil
				}
				return fmt.Errorf("it is %s: %s", rel.Phase, release.Describe(rel, time.Now()))
			}
		}
		return fmt.Errorf("no release yet")
	})
	return found
}

// proceed continues a release paused after a stage.
func (r *rig) proceed(rel release.Release) {
	r.t.Helper()
	in := release.Intent{Kind: release.IntentContinue, Actor: "alice", Surface: release.SurfaceAPI}
	if _, err := r.m.Releases().Record(context.Background(), rel.ID, in); err != nil {
		r.t.Fatal(err)
	}
}

func pausedAt(stage int) func(release.Release) bool {
	return func(r release.Release) bool { return r.Phase == release.Paused && r.Stage == stage }
}

func succeeded(r release.Release) bool { return r.Phase == release.Succeeded }

// deployment reads a Deployment of env.
func (r *rig) deployment(env, name string) *appsv1.Deployment {
	r.t.Helper()
	d, err := kc.Client().AppsV1().Deployments(r.ns[env]).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		r.t.Fatalf("%s: %v", env, err)
	}
	return d
}

// container finds a container of a Deployment by name.
func container(d *appsv1.Deployment, name string) (string, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c.Image, true
		}
	}
	return "", false
}

// wantDeployment checks a Deployment's replicas, the image of one of its
// containers, and annotations on it and, with onPods, on its pod template.
func (r *rig) wantDeployment(env, name, ctr, image string, replicas int32, ann map[string]string, onPods bool) {
	r.t.Helper()
	d := r.deployment(env, name)
	if got, _ := container(d, ctr); got != image || *d.Spec.Replicas != replicas {
		r.t.Errorf("%s: %s has container %s image %q and %d replicas, want %q and %d", env, name, ctr, got, *d.Spec.Replicas, image, replicas)
	}
	check := func(where string, have map[string]string) {
		for k, v := range ann {
			if have[k] != v {
				r.t.Errorf("%s: %s %s annotation %s = %q, want %q", env, name, where, k, have[k], v)
			}
		}
	}
	check("object", d.Annotations)
	if onPods {
		check("pod template", d.Spec.Template.Annotations)
	}
}

// traced are the traceability annotations a release puts on its objects.
func traced(rel release.Release) map[string]string {
	return map[string]string{
		"shipbot.io/release": rel.ID, "shipbot.io/deployment": rel.ID, "shipbot.io/project": "shop/web",
		"shipbot.io/environment": rel.Environment, "shipbot.io/ref": rel.To.Ref, "shipbot.io/sha": rel.To.SHA,
		"shipbot.io/pipeline-id": fmt.Sprint(rel.PipelineID), "shipbot.io/deployed-by": "rel-manager",
	}
}

// weights reads the route weights by subset of the VirtualService web,
// which shipbot creates for the app's Service.
func (r *rig) weights(env string) (map[string]int32, []string, error) {
	vs, err := r.istio.NetworkingV1().VirtualServices(r.ns[env]).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	out := map[string]int32{}
	var hosts []string
	for _, h := range vs.Spec.Http {
		for _, d := range h.Route {
			w := d.Weight
			if len(h.Route) == 1 && w == 0 {
				w = 100
			}
			out[d.Destination.Subset] += w
			hosts = append(hosts, d.Destination.Host)
		}
	}
	return out, hosts, nil
}

// waitWeights waits for the canary's route weights to be want, each route
// going to service.
func (r *rig) waitWeights(service string, want map[string]int32) {
	r.t.Helper()
	fixtures.Eventually(r.t, 60*time.Second, "canary weights", func() error {
		got, hosts, err := r.weights("canary")
		if err == nil && !maps.Equal(got, want) {
			err = fmt.Errorf("weights %v, want %v", got, want)
		}
		for _, h := range hosts {
			if err == nil && h != service {
				err = fmt.Errorf("a route goes to %s, want %s", h, service)
			}
		}
		return err
	})
}

// selects reads the version a Service of env selects.
func (r *rig) selects(env, service string) string {
	r.t.Helper()
	svc, err := kc.Client().CoreV1().Services(r.ns[env]).Get(context.Background(), service, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return svc.Spec.Selector[release.LabelVersion]
}

// greeting reads what the Helm chart's ConfigMap says, from its values.
func greeting(r *rig, env string) string {
	r.t.Helper()
	return greetingOf(r, env, "web-demo")
}

package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// Shipbot's own cluster code, run with the ServiceAccount's token, does what
// it does in production: SubjectAccessReviews list what RBAC allows, this
// proves that list is what the code needs (a server-side apply that creates,
// a foreground namespace delete, a scale subresource update...).
func TestShipbotCodeRunsAsServiceAccount(t *testing.T) {
	install(t)
	rc := serviceAccountConfig(t)
	whoami(t, rc)
	client, err := kube.New("local", rc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *kube.Client, *rest.Config)
	}{
		{"deploy to an environment", deployToEnvironment},
		{"diagnose a failed rollout", diagnoseFailure},
		{"preview lifecycle", previewLifecycle},
		{"canary release with Istio", canaryRelease},
		{"blue-green release", blueGreenRelease},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tc.run(t, client, rc)
			t.Logf("%s as %s in %s", tc.name, saUser, time.Since(start).Round(time.Millisecond))
		})
	}
}

// render renders the built-in web-service template as the deploy engine does.
func render(t *testing.T, p templates.Params) []*unstructured.Unstructured {
	t.Helper()
	tpl, err := templates.Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	if p.Project == "" {
		p.Project, p.Environment, p.Replicas = "group/web", "dev", 1
		p.Ports = []templates.Port{{Name: "http", Port: 8080}}
	}
	objs, err := tpl.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Obj
	}
	return out
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	slices.Sort(out)
	return out
}

// deleteNamespaceLater removes, as the admin, a namespace the test made shipbot create.
func deleteNamespaceLater(t *testing.T, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := kc.Client().CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
}

// deployToEnvironment is deployer.DeployRunner.rollout: ensure the namespace,
// apply every object the template renders, wait for the rollout.
func deployToEnvironment(t *testing.T, c *kube.Client, _ *rest.Config) {
	ns := "deploytest-dev-" + rand.String(5)
	deleteNamespaceLater(t, ns)
	if err := c.EnsureNamespace(t.Context(), ns, map[string]string{deployer.LabelManagedBy: "shipbot"}); err != nil {
		t.Fatalf("EnsureNamespace: %v", err)
	}
	objs := render(t, templates.Params{App: "web", Namespace: ns, Image: "registry.local/web:v1",
		Host: "web.example.com", Config: map[string]string{"GREETING": "hello"}})
	if got, want := kinds(objs), []string{"ConfigMap", "Deployment", "Ingress", "Service"}; !slices.Equal(got, want) {
		t.Fatalf("web-service renders %v, want %v: update rbac.yaml and this test", got, want)
	}
	if err := c.Apply(t.Context(), objs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.WaitRollout(t.Context(), ns, "web", time.Minute); err != nil {
		t.Fatalf("WaitRollout: %v", err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	got, err := kc.Client().CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	if err != nil || got.Labels[deployer.LabelManagedBy] != "shipbot" {
		t.Errorf("namespace %s: labels %v (%v)", ns, got.Labels, err)
	}
}

// diagnoseFailure is kube.Client.Diagnose after a failed rollout: the
// reasons come from pod status (pods list) and Warning events (events list).
func diagnoseFailure(t *testing.T, c *kube.Client, _ *rest.Config) {
	ns := kc.NewNamespace(t)
	objs := render(t, templates.Params{App: "broken", Namespace: ns, Image: cluster.BadImageRegistry + "web:missing"})
	if err := c.Apply(t.Context(), objs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var rerr *kube.RolloutError
	if err := c.WaitRollout(t.Context(), ns, "broken", 3*time.Second); !errors.As(err, &rerr) {
		t.Fatalf("WaitRollout = %v, want a *kube.RolloutError", err)
	}
	// Events are written a moment after the pod status; Diagnose is what
	// shipbot calls again on the next failure report.
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := kc.Client().AppsV1().Deployments(ns).Get(t.Context(), "broken", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reasons := c.Diagnose(t.Context(), d)
		joined := strings.Join(reasons, "\n")
		if strings.Contains(joined, "cannot read pods") {
			t.Fatalf("Diagnose could not list pods:\n%s", joined)
		}
		// "Failed" is the reason of a Warning event only; pod status says ImagePullBackOff.
		fromStatus, fromEvents := strings.Contains(joined, ": ImagePullBackOff: "), strings.Contains(joined, ": Failed: ")
		if fromStatus && fromEvents {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Diagnose = %q, want reasons from pod status (ImagePullBackOff) and from Warning events (Failed)", reasons)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// previewLifecycle is a merge request preview: a namespace with quota and
// limits, found by the orphan sweep, deployed to, then deleted.
func previewLifecycle(t *testing.T, c *kube.Client, _ *rest.Config) {
	ns := "preview-deploytest-mr-" + rand.String(5)
	deleteNamespaceLater(t, ns)
	q := func(s string) resource.Quantity { return resource.MustParse(s) }
	spec := kube.NamespaceSpec{
		Name:       ns,
		Labels:     map[string]string{deployer.LabelPreview: "true", deployer.LabelManagedBy: "shipbot"},
		Quota:      corev1.ResourceList{corev1.ResourceRequestsCPU: q("2"), corev1.ResourceRequestsMemory: q("4Gi"), corev1.ResourcePods: q("20")},
		Default:    corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("512Mi")},
		DefaultReq: corev1.ResourceList{corev1.ResourceCPU: q("50m"), corev1.ResourceMemory: q("64Mi")},
		Max:        corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("2Gi")},
	}
	if err := c.ApplyNamespace(t.Context(), spec); err != nil {
		t.Fatalf("ApplyNamespace: %v", err)
	}
	if err := c.ApplyNamespace(t.Context(), spec); err != nil {
		t.Fatalf("ApplyNamespace again (a redeploy): %v", err)
	}
	nss, err := c.Namespaces(t.Context(), deployer.LabelPreview+"=true")
	if err != nil {
		t.Fatalf("Namespaces: %v", err)
	}
	if !slices.ContainsFunc(nss, func(n corev1.Namespace) bool { return n.Name == ns }) {
		t.Errorf("Namespaces(%s=true) does not list %s", deployer.LabelPreview, ns)
	}
	if _, err := kc.Client().CoreV1().ResourceQuotas(ns).Get(t.Context(), "shipbot", metav1.GetOptions{}); err != nil {
		t.Errorf("resource quota: %v", err)
	}
	if _, err := kc.Client().CoreV1().LimitRanges(ns).Get(t.Context(), "shipbot", metav1.GetOptions{}); err != nil {
		t.Errorf("limit range: %v", err)
	}
	objs := render(t, templates.Params{App: "web", Namespace: ns, Image: "registry.local/web:mr", Host: "mr-1-web.preview.example.com"})
	if err := c.Apply(t.Context(), objs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.WaitRollout(t.Context(), ns, "web", time.Minute); err != nil {
		t.Fatalf("WaitRollout: %v", err)
	}
	if err := c.DeleteNamespace(t.Context(), ns, nil, 90*time.Second); err != nil {
		t.Fatalf("DeleteNamespace: %v", err)
	}
	if _, err := kc.Client().CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after DeleteNamespace: %v, want not found", ns, err)
	}
}

// releases is a release engine on a fresh store that reaches the cluster
// with the ServiceAccount's token.
type releases struct {
	t     *testing.T
	e     *release.Stepper
	clock *fakeclock.Clock
	ns    string
}

func newReleases(t *testing.T, rc *rest.Config) *releases {
	t.Helper()
	c, err := release.NewCluster("local", rc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	builtin, err := templates.Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New(time.Now())
	e, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{"local": c}, Clock: clock,
		Renderer: release.TemplateRenderer{Template: builtin},
		Poll:     100 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &releases{t: t, e: e, clock: clock, ns: kc.NewNamespace(t)}
}

func revision(name string) release.Revision {
	if name == "" {
		return release.Revision{}
	}
	return release.Revision{Name: name, Image: "registry.local/web:" + name, SHA: "sha-" + name, Ref: name}
}

// run creates a release of app web from one revision to the next and steps
// it until it succeeds and, its scale-down delay passed on the clock, has
// scaled the old version down. It keeps no old Deployment
// (revisionHistory 0), so that the old version's is deleted too.
func (r *releases) run(strategy release.Strategy, from, to string, stages ...release.Stage) {
	r.t.Helper()
	rel, err := r.e.Create(r.t.Context(), release.Release{
		App: "web", Project: "group/web", Environment: "prod", Cluster: "local", Namespace: r.ns,
		Strategy: strategy, From: revision(from), To: revision(to), Replicas: 2, Stages: stages,
		Params:          templates.Params{Ports: []templates.Port{{Name: "http", Port: 8080}}},
		RevisionHistory: ptr.To[int32](0),
	})
	if err != nil {
		r.t.Fatalf("create %s release %s → %s: %v", strategy, from, to, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := r.e.Step(r.t.Context(), rel.ID)
		if err != nil {
			r.t.Fatalf("step %s: %v", rel.ID, err)
		}
		got, err := r.e.Get(r.t.Context(), rel.ID)
		if err != nil {
			r.t.Fatal(err)
		}
		if got.Phase == release.Succeeded && (got.Drain == nil || !got.Drain.Done.IsZero()) {
			return
		}
		if (res.Done && got.Phase != release.Succeeded) || time.Now().After(deadline) {
			r.t.Fatalf("%s release %s → %s ended %s, want Succeeded and the old version scaled down; history:\n%s", strategy, from, to, res.Phase, history(got))
		}
		r.clock.Advance(res.RequeueAfter)
		time.Sleep(50 * time.Millisecond)
	}
}

func history(r release.Release) string {
	var b strings.Builder
	for _, e := range r.History {
		fmt.Fprintf(&b, "  %-11s stage %d: %s\n", e.Phase, e.Stage, e.Message)
	}
	return b.String()
}

// canaryRelease: the engine creates the VirtualService, edits its weights,
// server-side applies the DestinationRule, scales through deployments/scale
// and deletes the old version's Deployment beyond the revision history.
func canaryRelease(t *testing.T, _ *kube.Client, rc *rest.Config) {
	r := newReleases(t, rc)
	r.run(release.Canary, "", "v1")
	r.run(release.Canary, "v1", "v2", release.Stage{Target: 50}, release.Stage{Target: 100})

	admin, err := release.NewCluster("admin", kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := admin.Istio.NetworkingV1().VirtualServices(r.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("virtual service web: %v", err)
	}
	if vs.Labels["app.kubernetes.io/managed-by"] != "shipbot" {
		t.Errorf("virtual service web was not created by shipbot: labels %v", vs.Labels)
	}
	dr, err := admin.Istio.NetworkingV1().DestinationRules(r.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("destination rule web: %v", err)
	}
	var subsets []string
	for _, s := range dr.Spec.Subsets {
		subsets = append(subsets, s.Name)
	}
	if !slices.Equal(subsets, []string{"v2"}) {
		t.Errorf("destination rule subsets %v, want [v2]", subsets)
	}
	wantReplicas(t, r.ns, map[string]int32{"web-v1": -1, "web-v2": 2})
}

// blueGreenRelease: the engine reads the Service to see which version it serves.
func blueGreenRelease(t *testing.T, _ *kube.Client, rc *rest.Config) {
	r := newReleases(t, rc)
	r.run(release.BlueGreen, "", "v1")
	r.run(release.BlueGreen, "v1", "v2", release.Stage{Target: 100})
	svc, err := kc.Client().CoreV1().Services(r.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := svc.Spec.Selector[release.LabelVersion]; v != "v2" {
		t.Errorf("service web selects version %q, want v2", v)
	}
	wantReplicas(t, r.ns, map[string]int32{"web-v1": -1, "web-v2": 2})
}

// wantReplicas checks each Deployment's replicas; -1 wants it deleted.
func wantReplicas(t *testing.T, ns string, want map[string]int32) {
	t.Helper()
	for name, n := range want {
		d, err := kc.Client().AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		switch {
		case n == -1 && apierrors.IsNotFound(err):
		case err != nil:
			t.Errorf("deployment %s: %v", name, err)
		case n == -1:
			t.Errorf("deployment %s: replicas %d, want it deleted", name, ptr.Deref(d.Spec.Replicas, 1))
		case d.Spec.Replicas == nil || *d.Spec.Replicas != n:
			t.Errorf("deployment %s: replicas %d, want %d", name, ptr.Deref(d.Spec.Replicas, 1), n)
		}
	}
}

// A second shipbot on the same store file gives up quickly with a message
// that says what is wrong, which is what docs/DEPLOY.md promises.
func TestSecondInstanceOnTheStoreFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	first, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	start := time.Now()
	second, err := store.Open(path, store.Options{})
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of the same store file succeeded")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "one shipbot per store file") {
		t.Errorf("second Open: %v, want store.ErrLocked saying to run one shipbot per store file", err)
	}
	if took > 5*time.Second {
		t.Errorf("second Open took %s to fail, want about 2s", took)
	}
	t.Logf("second instance: %q after %s", err, took.Round(time.Millisecond))
}

// With webhook.inbox, an intake replica stores a delivery as its own
// ServiceAccount, and serve, as shipbot's, relays it into its store: the
// Roles in rbac.yaml and intake.yaml are enough, and the intake's is no more.
func TestClusterInboxRunsAsItsServiceAccounts(t *testing.T) {
	install(t)
	intakeInbox, err := kubestore.NewInbox(serviceAccountConfigOf(t, "shipbot-intake"), namespace)
	if err != nil {
		t.Fatal(err)
	}
	d := store.Delivery{Key: "uuid:" + t.Name(), Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now().UTC()}
	for i := range 2 {
		if _, dup, err := intakeInbox.Accept(t.Context(), d); err != nil || dup != (i == 1) {
			t.Fatalf("intake replica's delivery %d: dup %v, %v", i, dup, err)
		}
	}
	if _, err := intakeInbox.Pending(t.Context(), 10); !apierrors.IsForbidden(err) {
		t.Errorf("the intake replica listed deliveries: %v, want forbidden", err)
	}
	serveInbox, err := kubestore.NewInbox(serviceAccountConfig(t), namespace)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pending, err := serveInbox.Pending(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if moved, err := (kubestore.Relay{From: serveInbox, To: st}).Pass(t.Context(), pending); err != nil || moved != 1 {
		t.Fatalf("serve relayed %d deliveries (%v), want 1", moved, err)
	}
	if left, err := serveInbox.Pending(t.Context(), 10); err != nil || len(left) != 0 {
		t.Errorf("%d deliveries left after the relay (%v)", len(left), err)
	}
}

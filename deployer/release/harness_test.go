package release

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakeclock"
)

var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	cluster.Main(m, cluster.Options{Istio: true, GatewayAPI: true}, &testCluster)
}

// The engine takes a fakeclock.Clock: tests never sleep for a gate
// interval or a progress deadline.
var _ Clock = (*fakeclock.Clock)(nil)

// harness is one test's namespace, store file, clock and engine.
type harness struct {
	t       *testing.T
	ns      string
	path    string
	clock   *fakeclock.Clock
	cluster *Cluster
	tc      *cluster.Cluster // the control plane the test runs on
	st      *store.Store
	e       *Stepper
	freezes Freezes // the engine's; set it, then reopen

	mu       sync.Mutex
	events   []Event
	lastStep time.Duration // how long the last Step of drive took
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cluster.Require(t, testCluster)
	return newHarnessOn(t, testCluster)
}

// newHarnessOn is a harness on another control plane than the package's.
func newHarnessOn(t *testing.T, tc *cluster.Cluster) *harness {
	t.Helper()
	c, err := NewCluster("local", tc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ns: tc.NewNamespace(t), path: filepath.Join(t.TempDir(), "shipbot.db"),
		clock: fakeclock.New(t0), cluster: c, tc: tc}
	h.open()
	t.Cleanup(func() { h.st.Close() })
	return h
}

// open opens the store file and an engine on it, as a restarted shipbot would.
func (h *harness) open() {
	h.t.Helper()
	st, err := store.Open(h.path, store.Options{LockTimeout: time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	builtin, err := templates.Builtin("web-service")
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := NewStepper(Options{
		Store: st, Clusters: ClusterMap{"local": h.cluster}, Clock: h.clock, Renderer: TemplateRenderer{Template: builtin},
		Notifier: NotifierFunc(h.notify), Log: testLogger(), Freezes: h.freezes,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st, h.e = st, e
}

// reopen abandons the engine and opens a new one on the same store file.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func testLogger() *slog.Logger {
	if os.Getenv("RELEASE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *harness) notify(_ context.Context, e Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
	return nil
}

// reasons lists the reasons of the events seen so far for a release.
func (h *harness) reasons(id string) []Reason {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Reason
	for _, e := range h.events {
		if e.Release.ID == id {
			out = append(out, e.Reason)
		}
	}
	return out
}

// release is a release of app web in the harness namespace.
func (h *harness) release(strategy Strategy, from, to string, replicas int32, stages ...Stage) Release {
	rev := func(name string) Revision {
		if name == "" {
			return Revision{}
		}
		return Revision{Name: name, Image: "registry.local/web:" + strings.ReplaceAll(name, "-", "."), SHA: "sha-" + name, Ref: name}
	}
	return Release{
		App: "web", Project: "group/web", Environment: "prod", Cluster: "local", Namespace: h.ns,
		Strategy: strategy, From: rev(from), To: rev(to), Replicas: replicas, Stages: stages,
		Params: templates.Params{Ports: []templates.Port{{Name: "http", Port: 8080}}},
	}
}

func (h *harness) create(r Release) Release {
	h.t.Helper()
	r, err := h.e.Create(h.t.Context(), r)
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	return r
}

// initial runs an app's first release of revision v1-0-0 to its end.
func (h *harness) initial(strategy Strategy, replicas int32) {
	h.t.Helper()
	r := h.create(h.release(strategy, "", "v1-0-0", replicas))
	h.drive(r.ID, phaseIs(Succeeded))
}

func phaseIs(p Phase) func(Release) bool { return func(r Release) bool { return r.Phase == p } }

// drive steps a release by hand until cond holds, moving the fake clock by
// each requeue and sleeping a little real time for the cluster's controllers.
func (h *harness) drive(id string, cond func(Release) bool) Release {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		start := time.Now()
		res, err := h.e.Step(h.t.Context(), id)
		h.lastStep = time.Since(start)
		if err != nil {
			h.t.Fatalf("step %s: %v", id, err)
		}
		r := h.get(id)
		if cond(r) {
			return r
		}
		// An ended release asks to be stepped again only for the
		// scale-down it owes.
		if res.RequeueAfter == 0 || time.Now().After(deadline) {
			h.t.Fatalf("release %s stopped at %s (%s); history:\n%s", id, r.Phase, res.Summary, history(r))
		}
		h.clock.Advance(res.RequeueAfter)
		time.Sleep(min(res.RequeueAfter, 25*time.Millisecond))
	}
}

// drainOld moves the fake clock to the end of an ended release's
// scale-down delay and steps it until it has scaled its old version down.
func (h *harness) drainOld(id string) Release {
	h.t.Helper()
	r := h.get(id)
	if !r.draining() {
		h.t.Fatalf("release %s (%s) owes no scale-down; history:\n%s", id, r.Phase, history(r))
	}
	h.clock.Advance(r.Drain.Due.Sub(h.clock.Now()))
	return h.drive(id, func(r Release) bool { return !r.draining() })
}

// cleanups lists the messages of release id's cleanup entries.
func (h *harness) cleanups(id string) []string {
	h.t.Helper()
	var out []string
	for _, e := range h.get(id).History {
		if e.Kind == EntryCleanup {
			out = append(out, e.Message)
		}
	}
	return out
}

func (h *harness) get(id string) Release {
	h.t.Helper()
	r, err := h.e.Get(h.t.Context(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func history(r Release) string {
	var b strings.Builder
	for _, e := range r.History {
		fmt.Fprintf(&b, "  %s %-10s %-12s stage %d: %s\n", e.At.Format("15:04:05"), e.Actor, e.Phase, e.Stage, e.Message)
	}
	return b.String()
}

// record records an intent as alice via Slack, failing the test if refused.
func (h *harness) record(id string, kind IntentKind, percent int) {
	h.t.Helper()
	if _, err := h.e.Record(h.t.Context(), id, Intent{Kind: kind, Percent: percent, Actor: "alice", Surface: SurfaceSlack}); err != nil {
		h.t.Fatalf("record %s: %v", kind, err)
	}
}

// replicas reads a Deployment's desired replicas; -1 if it does not exist.
func (h *harness) replicas(name string) int32 {
	h.t.Helper()
	return h.replicasIn(h.ns, name)
}

// replicasIn is replicas in namespace ns.
func (h *harness) replicasIn(ns, name string) int32 {
	h.t.Helper()
	d, err := h.tc.Client().AppsV1().Deployments(ns).Get(h.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return -1
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func (h *harness) selector() map[string]string {
	h.t.Helper()
	svc, err := h.tc.Client().CoreV1().Services(h.ns).Get(h.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return svc.Spec.Selector
}

func (h *harness) virtualService() *networkingv1.VirtualService {
	h.t.Helper()
	vs, err := h.cluster.Istio.NetworkingV1().VirtualServices(h.ns).Get(h.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return vs
}

// weights reads the subset weights of the VirtualService's route named web.
func (h *harness) weights() map[string]int32 {
	h.t.Helper()
	out := map[string]int32{}
	for _, r := range h.virtualService().Spec.Http {
		if r.Name != "web" {
			continue
		}
		for _, d := range r.Route {
			out[d.Destination.Subset] = d.Weight
		}
	}
	return out
}

func (h *harness) subsets() []string {
	h.t.Helper()
	dr, err := h.cluster.Istio.NetworkingV1().DestinationRules(h.ns).Get(h.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, s := range dr.Spec.Subsets {
		out = append(out, s.Name+"="+s.Labels[LabelVersion])
	}
	return out
}

// image is the first container image of Deployment name.
func (h *harness) image(name string) string {
	h.t.Helper()
	d, err := testCluster.Client().AppsV1().Deployments(h.ns).Get(h.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

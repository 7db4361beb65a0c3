package release

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/templates"
)

// requestLog counts the requests a cluster client sends, by method and
// resource, e.g. "GET deployments".
type requestLog struct {
	mu   sync.Mutex
	seen map[string]int
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		res := parts[len(parts)-1]
		if len(parts) > 1 && (len(parts)%2 == 0) == strings.HasPrefix(req.URL.Path, "/api/") {
			res = parts[len(parts)-2] // .../deployments/NAME
		}
		if req.URL.Query().Get("watch") == "true" {
			res += " (watch)"
		}
		l.mu.Lock()
		l.seen[req.Method+" "+res]++
		l.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (l *requestLog) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.seen
	l.seen = map[string]int{}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Under a running Scheduler, a canary reads the objects it steers from
// informers and is woken by their watch: with a poll of an hour, a second
// release still moves 10/50/100 to its end, and it reads no Deployment,
// VirtualService or DestinationRule from the apiserver.
func TestSchedulerStepsFromInformers(t *testing.T) {
	h := newHarness(t)
	log := &requestLog{seen: map[string]int{}}
	rc := rest.CopyConfig(testCluster.RESTConfig())
	rc.WrapTransport = log.wrap
	counted, err := NewCluster("local", rc)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := templates.Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewStepper(Options{Store: h.st, Clusters: ClusterMap{"local": counted}, Clock: h.clock,
		Renderer: TemplateRenderer{Template: builtin}, Log: testLogger(), Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	h.foreignVirtualService()
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	sch := &Scheduler{Stepper: e, Log: testLogger()}
	go func() { defer close(stopped); _ = sch.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	run := func(from, to string) Release {
		t.Helper()
		r := h.create(h.release(Canary, from, to, 2, Stage{Target: 10}, Stage{Target: 50}, Stage{Target: 100}))
		sch.Kick(r.ID)
		deadline := time.Now().Add(60 * time.Second)
		for r = h.get(r.ID); !r.Phase.Terminal(); r = h.get(r.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("release %s %s after 60s with a poll of an hour; history:\n%s", to, r.Phase, history(r))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r.Phase != Succeeded {
			t.Fatalf("release %s %s; history:\n%s", to, r.Phase, history(r))
		}
		return r
	}
	run("", "v1-0-0")
	log.take()
	run("v1-0-0", "v2-0-0")
	got := log.take()
	for _, res := range []string{"deployments", "virtualservices", "destinationrules", "services"} {
		if n := got["GET "+res]; n != 0 {
			t.Errorf("%d GETs of %s in a steady-state release, want 0 (all requests: %v)", n, res, got)
		}
	}
	if w := h.weights(); w["v2-0-0"] != 100 || w["v1-0-0"] != 0 {
		t.Errorf("weights %v at the end, want all on v2-0-0", w)
	}
	if n := h.replicas("web-v2-0-0"); n != 2 {
		t.Errorf("web-v2-0-0 at %d replicas, want 2", n)
	}
	t.Logf("requests of the second release: %v", got)
}

// A release creates its namespace when it is missing, as a plain deploy
// does, and labels it as shipbot's.
func TestReleaseCreatesItsNamespace(t *testing.T) {
	h := newHarness(t)
	h.ns += "-new"
	t.Cleanup(func() {
		_ = h.cluster.Kube.Kube.CoreV1().Namespaces().Delete(context.Background(), h.ns, metav1.DeleteOptions{})
	})
	r := h.create(h.release(Canary, "", "v1-0-0", 1))
	h.drive(r.ID, phaseIs(Succeeded))
	ns, err := h.cluster.Kube.Kube.CoreV1().Namespaces().Get(t.Context(), h.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", h.ns, err)
	}
	if ns.Labels["app.kubernetes.io/managed-by"] != "shipbot" {
		t.Errorf("namespace labels %v, want managed-by shipbot", ns.Labels)
	}
	if n := h.replicas("web-v1-0-0"); n != 1 {
		t.Errorf("web-v1-0-0 at %d replicas, want 1", n)
	}
}

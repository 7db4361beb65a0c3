package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// weightWrite is what the apiserver had of both versions when a route
// write that gives v2 a new weight reached it.
type weightWrite struct {
	weight      int32 // v2's weight in the write
	v2, v2Ready int32 // v2's spec.replicas and available pods
	v1, v1Ready int32
}

// routeWrites watches the engine's requests to the apiserver: before a
// write of the app's VirtualService or HTTPRoute that changes v2's weight
// is sent, it reads both Deployments from the apiserver, so each record is
// the state at the moment the weight is written. afterScale, when set, runs
// once a merge patch of v2's replicas has been answered.
type routeWrites struct {
	h          *harness
	mu         sync.Mutex
	last       int32
	seen       []weightWrite
	afterScale func(replicas int32)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// watchRouteWrites gives the harness an engine whose cluster connection
// goes through a routeWrites.
func (h *harness) watchRouteWrites() *routeWrites {
	h.t.Helper()
	w := &routeWrites{h: h}
	rc := h.tc.RESTConfig()
	rc.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) { return w.roundTrip(next, req) })
	})
	c, err := NewCluster("local", rc)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cluster = c
	h.reopen()
	return w
}

func (w *routeWrites) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	path := req.URL.Path
	if req.Body == nil || (req.Method != http.MethodPut && req.Method != http.MethodPatch) {
		return next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	switch {
	case req.Method == http.MethodPut && strings.HasSuffix(path, "/virtualservices/web"):
		w.weightWritten(req.Context(), vsWeight(body))
	case req.Method == http.MethodPut && strings.HasSuffix(path, "/httproutes/web"):
		w.weightWritten(req.Context(), routeWeight(body))
	case req.Method == http.MethodPatch && strings.HasSuffix(path, "/deployments/web-v2-0-0"):
		resp, err := next.RoundTrip(req)
		var p struct {
			Spec struct{ Replicas *int32 } `json:"spec"`
		}
		if err == nil && json.Unmarshal(body, &p) == nil && p.Spec.Replicas != nil && w.afterScale != nil {
			w.afterScale(*p.Spec.Replicas)
		}
		return resp, err
	}
	return next.RoundTrip(req)
}

// weightWritten records both Deployments if weight is v2's new weight.
func (w *routeWrites) weightWritten(ctx context.Context, weight int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if weight == w.last {
		return
	}
	w.last = weight
	if weight == 0 {
		return
	}
	read := func(name string) (spec, ready int32) {
		d, err := w.h.tc.Client().AppsV1().Deployments(w.h.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			w.h.t.Errorf("read %s as weight %d is written: %v", name, weight, err)
			return -1, -1
		}
		return ptr.Deref(d.Spec.Replicas, 1), d.Status.AvailableReplicas
	}
	rec := weightWrite{weight: weight}
	rec.v2, rec.v2Ready = read("web-v2-0-0")
	rec.v1, rec.v1Ready = read("web-v1-0-0")
	w.seen = append(w.seen, rec)
}

func (w *routeWrites) writes() []weightWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// vsWeight is v2's weight in a VirtualService body; 0 without a v2 route.
func vsWeight(body []byte) int32 {
	var vs networkingv1.VirtualService
	if err := json.Unmarshal(body, &vs); err != nil {
		return 0
	}
	for _, r := range vs.Spec.Http {
		for _, d := range r.Route {
			if d.Destination.Subset == "v2-0-0" {
				return d.Weight
			}
		}
	}
	return 0
}

// routeWeight is v2's weight in an HTTPRoute body; 0 without a v2 backend.
func routeWeight(body []byte) int32 {
	var route gatewayv1.HTTPRoute
	if err := json.Unmarshal(body, &route); err != nil {
		return 0
	}
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if ptr.Deref(rule.Name, "") == "web" && b.Name == "web-v2-0-0" {
				return ptr.Deref(b.Weight, 1)
			}
		}
	}
	return 0
}

// scaleEntries lists a release's scale history entries.
func scaleEntries(r Release) []string {
	var out []string
	for _, e := range r.History {
		if e.Kind == EntryScale {
			out = append(out, e.Message)
		}
	}
	return out
}

func (w weightWrite) String() string {
	return fmt.Sprintf("%d %%: v2 %d/%d available, v1 %d/%d", w.weight, w.v2Ready, w.v2, w.v1Ready, w.v1)
}

// at is the write of weight with v2 at v2 pods, all available, and v1 at 4.
func at(weight, v2 int32) weightWrite { return weightWrite{weight, v2, v2, 4, 4} }

func TestCanaryScaleSizesTheNewVersionBeforeEachWeight(t *testing.T) {
	matching := []weightWrite{at(10, 1), at(50, 2), at(100, 4)}
	tests := []struct {
		name   string
		router Router
		scale  CanaryScale
		want   []weightWrite
		scales []string
	}{
		{"istio, matchTraffic", RouterIstio, CanaryScaleMatchTraffic, matching, []string{
			"scaled web-v2-0-0 to 1 of 4 pods for 10 %", "scaled web-v2-0-0 to 2 of 4 pods for 50 %", "scaled web-v2-0-0 to 4 of 4 pods for 100 %"}},
		{"gateway API, matchTraffic", RouterGatewayAPI, CanaryScaleMatchTraffic, matching, []string{
			"scaled web-v2-0-0 to 1 of 4 pods for 10 %", "scaled web-v2-0-0 to 2 of 4 pods for 50 %", "scaled web-v2-0-0 to 4 of 4 pods for 100 %"}},
		{"istio, full", RouterIstio, CanaryScaleFull, []weightWrite{at(10, 4), at(50, 4), at(100, 4)}, nil},
		{"istio, unset is full", RouterIstio, "", []weightWrite{at(10, 4), at(50, 4), at(100, 4)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			writes := h.watchRouteWrites()
			release := func(from, to string, stages ...Stage) Release {
				r := h.release(Canary, from, to, 4, stages...)
				r.Router, r.CanaryScale = tt.router, tt.scale
				r.ScaleDownDelay = ptr.To(time.Duration(0))
				return h.create(r)
			}
			if tt.router == RouterGatewayAPI {
				h.foreignHTTPRoute()
			}
			h.drive(release("", "v1-0-0").ID, phaseIs(Succeeded))

			r := release("v1-0-0", "v2-0-0", Stage{Target: 10}, Stage{Target: 50}, Stage{Target: 100})
			if r.CanaryScale == "" {
				t.Fatal("the release left canaryScale empty, want it spelled out")
			}
			r = h.drive(r.ID, phaseIs(Succeeded))
			if got := writes.writes(); !slices.Equal(got, tt.want) {
				t.Errorf("as each weight was written:\n  %v\nwant\n  %v", got, tt.want)
			}
			if got := scaleEntries(r); !slices.Equal(got, tt.scales) {
				t.Errorf("scale entries %q, want %q", got, tt.scales)
			}
			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 0 || v2 != 4 {
				t.Errorf("end: v1=%d v2=%d, want 0 4", v1, v2)
			}
		})
	}
}

// A shipbot that dies as it scales the new version, before or after it
// saves that, scales once more (a no-op), records the scale once, and sets
// the weight only once the pods are there.
func TestCanaryScaleResumesAfterACrash(t *testing.T) {
	tests := []struct {
		name string
		// crash cancels the step's context at the chosen point.
		crash func(h *harness, w *routeWrites, cancel context.CancelFunc)
	}{
		{"after the scale to 2 was saved", func(h *harness, _ *routeWrites, cancel context.CancelFunc) {
			h.e.afterAction = func(r *Release, action string) {
				if action == "scale" && r.CanaryPods == 2 {
					cancel()
				}
			}
		}},
		{"after the scale to 2 was sent, before it was saved", func(_ *harness, w *routeWrites, cancel context.CancelFunc) {
			w.afterScale = func(replicas int32) {
				if replicas == 2 {
					cancel()
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			writes := h.watchRouteWrites()
			h.initial(Canary, 4)
			rel := h.release(Canary, "v1-0-0", "v2-0-0", 4, Stage{Target: 10}, Stage{Target: 50}, Stage{Target: 100})
			rel.CanaryScale = CanaryScaleMatchTraffic
			r := h.create(rel)

			ctx, cancel := context.WithCancel(t.Context())
			tt.crash(h, writes, cancel)
			for ctx.Err() == nil {
				res, err := h.e.Step(ctx, r.ID)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Fatalf("step: %v", err)
				}
				if res.Done {
					t.Fatal("release ended before the crash point")
				}
				h.clock.Advance(res.RequeueAfter)
				time.Sleep(10 * time.Millisecond)
			}
			writes.afterScale = nil
			h.reopen()
			if got := h.get(r.ID); got.Stage != 1 || got.Percent != 10 {
				t.Fatalf("store has stage %d at %d %%, want stage 1 at 10 %%", got.Stage, got.Percent)
			}
			if got := h.replicas("web-v2-0-0"); got != 2 {
				t.Errorf("v2 has %d replicas at the crash, want 2", got)
			}
			r = h.drive(r.ID, phaseIs(Succeeded))

			if got, want := writes.writes(), []weightWrite{at(10, 1), at(50, 2), at(100, 4)}; !slices.Equal(got, want) {
				t.Errorf("as each weight was written:\n  %v\nwant\n  %v", got, want)
			}
			want := []string{"scaled web-v2-0-0 to 1 of 4 pods for 10 %", "scaled web-v2-0-0 to 2 of 4 pods for 50 %", "scaled web-v2-0-0 to 4 of 4 pods for 100 %"}
			if got := scaleEntries(r); !slices.Equal(got, want) {
				t.Errorf("scale entries %q, want %q", got, want)
			}
		})
	}
}

func TestCanaryPods(t *testing.T) {
	tests := []struct {
		scale    CanaryScale
		replicas int32
		stage    Stage
		want     int32
	}{
		{CanaryScaleMatchTraffic, 4, Stage{Target: 10}, 1},
		{CanaryScaleMatchTraffic, 4, Stage{Target: 25}, 1},
		{CanaryScaleMatchTraffic, 4, Stage{Target: 26}, 2},
		{CanaryScaleMatchTraffic, 4, Stage{Target: 50}, 2},
		{CanaryScaleMatchTraffic, 4, Stage{Target: 100}, 4},
		{CanaryScaleMatchTraffic, 10, Stage{Target: 0, Match: &Match{Headers: map[string]string{"x-canary": "true"}}}, 1},
		{CanaryScaleMatchTraffic, 10, Stage{Target: 10, Mirror: 50}, 5},
		{CanaryScaleFull, 4, Stage{Target: 10}, 4},
		{"", 4, Stage{Target: 10}, 4},
	}
	for _, tt := range tests {
		r := &Release{Strategy: Canary, CanaryScale: tt.scale, Replicas: tt.replicas, Stages: []Stage{tt.stage}}
		if got := canaryPods(r, tt.stage.Target); got != tt.want {
			t.Errorf("%s, %d replicas, stage %s: %d pods, want %d", tt.scale, tt.replicas, tt.stage.Label(), got, tt.want)
		}
	}
}

package release

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// foreignVirtualService creates the app team's VirtualService: a route of
// theirs to another service, and the route to web with a retry policy that
// shipbot must keep.
func (h *harness) foreignVirtualService() *v1alpha3.VirtualService {
	h.t.Helper()
	spec := &v1alpha3.VirtualService{
		Hosts:    []string{"web", "web.example.com"},
		Gateways: []string{"mesh", "public"},
		Http: []*v1alpha3.HTTPRoute{
			{
				Name:  "legacy",
				Match: []*v1alpha3.HTTPMatchRequest{{Uri: &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Prefix{Prefix: "/legacy"}}}},
				Route: []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: "legacy"}}},
			},
			{
				Name:    "web",
				Route:   []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: "web", Port: &v1alpha3.PortSelector{Number: 8080}}}},
				Retries: &v1alpha3.HTTPRetry{Attempts: 3},
			},
		},
	}
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: h.ns}}
	proto.Merge(&vs.Spec, spec)
	if _, err := h.cluster.Istio.NetworkingV1().VirtualServices(h.ns).Create(h.t.Context(), vs, metav1.CreateOptions{FieldManager: "team"}); err != nil {
		h.t.Fatal(err)
	}
	return spec
}

// wantOriginal checks that the VirtualService is back to spec, with no trace of shipbot.
func (h *harness) wantOriginal(spec *v1alpha3.VirtualService) {
	h.t.Helper()
	vs := h.virtualService()
	if !proto.Equal(&vs.Spec, spec) {
		h.t.Errorf("VirtualService spec =\n  %v\nwant the original\n  %v", &vs.Spec, spec)
	}
	if _, ok := vs.Annotations[AnnotationOriginal]; ok {
		h.t.Errorf("annotation %s is still there", AnnotationOriginal)
	}
}

// wantCanary checks what the canary strategy says a stage looks like.
func (h *harness) wantCanary(stage string, weights map[string]int32, v1, v2 int32, subsets ...string) {
	h.t.Helper()
	if got := h.weights(); !maps.Equal(got, weights) {
		h.t.Errorf("%s: weights %v, want %v", stage, got, weights)
	}
	if a, b := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); a != v1 || b != v2 {
		h.t.Errorf("%s: replicas v1=%d v2=%d, want %d %d", stage, a, b, v1, v2)
	}
	if got := h.subsets(); !slices.Equal(got, subsets) {
		h.t.Errorf("%s: subsets %v, want %v", stage, got, subsets)
	}
	if sel := h.selector(); sel[LabelVersion] != "" || sel["app.kubernetes.io/name"] != "web" {
		h.t.Errorf("%s: service selector %v, want the app's pods of every version", stage, sel)
	}
}

// wantShipbotOnlyOnItsRoute checks that, mid-release, only shipbot's route
// changed and the original is remembered.
func (h *harness) wantShipbotOnlyOnItsRoute(orig *v1alpha3.VirtualService) {
	h.t.Helper()
	vs := h.virtualService()
	if !proto.Equal(vs.Spec.Http[0], orig.Http[0]) || !slices.Equal(vs.Spec.Hosts, orig.Hosts) || !slices.Equal(vs.Spec.Gateways, orig.Gateways) {
		h.t.Errorf("shipbot touched what it does not own: %v", &vs.Spec)
	}
	if r := vs.Spec.Http[1]; r.Name != "web" || r.Retries.GetAttempts() != 3 || r.Route[0].Destination.Port.GetNumber() != 8080 {
		h.t.Errorf("shipbot's route lost its other fields: %v", r)
	}
	saved := &v1alpha3.VirtualService{}
	if err := saved.UnmarshalJSON([]byte(vs.Annotations[AnnotationOriginal])); err != nil || !proto.Equal(saved, orig) {
		h.t.Errorf("original annotation = %v (%v), want %v", saved, err, orig)
	}
}

var (
	split10  = map[string]int32{"v1-0-0": 90, "v2-0-0": 10}
	split50  = map[string]int32{"v1-0-0": 50, "v2-0-0": 50}
	v2Only   = map[string]int32{"v1-0-0": 0, "v2-0-0": 100}
	both     = []string{"v1-0-0=v1-0-0", "v2-0-0=v2-0-0"}
	manual3  = []Stage{{Target: 10, Continue: Manual}, {Target: 50, Continue: Manual}, {Target: 100, Continue: Manual}}
	canaryV2 = func(h *harness, stages ...Stage) Release {
		return h.create(h.release(Canary, "v1-0-0", "v2-0-0", 2, stages...))
	}
)

func TestCanaryStagesMoveOnlyShipbotsRoute(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignVirtualService()
	h.initial(Canary, 2)
	h.wantOriginal(orig)
	if got := h.subsets(); !slices.Equal(got, []string{"v1-0-0=v1-0-0"}) {
		t.Errorf("after the first release: subsets %v", got)
	}

	r := canaryV2(h, Stage{Target: 10, Continue: Manual}, Stage{Target: 50, Continue: Manual}, Stage{Target: 100})
	start := time.Now()
	r = h.drive(r.ID, phaseIs(Paused))
	t.Logf("stage 1 (10 %%) in effect %s after the first Step (v2 pods started from scratch); the Step that set the weights took %s",
		time.Since(start).Round(time.Millisecond), h.lastStep.Round(time.Millisecond))
	h.wantCanary("stage 1", split10, 2, 2, both...)
	h.wantShipbotOnlyOnItsRoute(orig)
	if got := Describe(r, h.clock.Now()); got != "stage 2/3 · 10 % · waiting for approval 0s" {
		t.Errorf("Describe = %q", got)
	}

	teammate := h.addForeignRoute()
	h.record(r.ID, IntentContinue, 0)
	start = time.Now()
	h.drive(r.ID, phaseIs(Paused))
	t.Logf("stage 2 (50 %%) applied in %s, by one Step of %s (pods already available)", time.Since(start).Round(time.Millisecond), h.lastStep.Round(time.Millisecond))
	h.wantCanary("stage 2", split50, 2, 2, both...)

	h.record(r.ID, IntentContinue, 0)
	r = h.drive(r.ID, phaseIs(Succeeded))
	h.wantCanary("done, in the scale-down delay", v2Only, 2, 2, both...)
	r = h.drainOld(r.ID)
	if got := h.replicas("web-v1-0-0"); got != 0 {
		t.Errorf("v1 replicas %d after success, want 0", got)
	}
	if got := h.subsets(); !slices.Equal(got, []string{"v2-0-0=v2-0-0"}) {
		t.Errorf("after success: subsets %v", got)
	}
	orig.Http = append([]*v1alpha3.HTTPRoute{teammate}, orig.Http...)
	h.wantOriginal(orig)
	want := []Reason{ReasonStageStarted, ReasonStageCompleted, ReasonPaused, ReasonStageStarted, ReasonStageCompleted, ReasonPaused,
		ReasonStageStarted, ReasonStageCompleted, ReasonSucceeded}
	if got := h.reasons(r.ID); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// addForeignRoute has a teammate put a route in front of shipbot's mid-release.
func (h *harness) addForeignRoute() *v1alpha3.HTTPRoute {
	h.t.Helper()
	route := &v1alpha3.HTTPRoute{
		Name:  "debug",
		Match: []*v1alpha3.HTTPMatchRequest{{Headers: map[string]*v1alpha3.StringMatch{"x-debug": {MatchType: &v1alpha3.StringMatch_Exact{Exact: "1"}}}}},
		Route: []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: "debug"}}},
	}
	vs := h.virtualService()
	vs.Spec.Http = append([]*v1alpha3.HTTPRoute{route}, vs.Spec.Http...)
	if _, err := h.cluster.Istio.NetworkingV1().VirtualServices(h.ns).Update(h.t.Context(), vs, metav1.UpdateOptions{FieldManager: "team"}); err != nil {
		h.t.Fatal(err)
	}
	return proto.Clone(route).(*v1alpha3.HTTPRoute)
}

func TestCanaryIntentsAtEachStage(t *testing.T) {
	rollback := func(h *harness, r Release, orig *v1alpha3.VirtualService) {
		h.record(r.ID, IntentRollback, 0)
		r = h.drive(r.ID, phaseIs(RolledBack))
		h.wantCanary("rolled back, in the scale-down delay", map[string]int32{"v1-0-0": 100, "v2-0-0": 0}, 2, 2, both...)
		r = h.drainOld(r.ID)
		h.wantOriginal(orig)
		if a, b := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); a != 2 || b != 0 {
			h.t.Errorf("after rollback: replicas v1=%d v2=%d, want 2 0", a, b)
		}
		if got := h.subsets(); !slices.Equal(got, []string{"v1-0-0=v1-0-0"}) {
			h.t.Errorf("after rollback: subsets %v", got)
		}
		if r.Percent != 0 || !slices.Contains(h.reasons(r.ID), ReasonRolledBack) {
			h.t.Errorf("after rollback: percent %d, events %v", r.Percent, h.reasons(r.ID))
		}
	}
	tests := []struct {
		name string
		run  func(h *harness, r Release, orig *v1alpha3.VirtualService)
	}{
		{"rollback at stage 1", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.drive(r.ID, phaseIs(Paused))
			h.wantCanary("stage 1", split10, 2, 2, both...)
			rollback(h, r, orig)
		}},
		{"rollback at stage 2", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.drive(r.ID, phaseIs(Paused))
			h.record(r.ID, IntentContinue, 0)
			h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == 2 })
			h.wantCanary("stage 2", split50, 2, 2, both...)
			rollback(h, r, orig)
		}},
		{"rollback at stage 3", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.drive(r.ID, phaseIs(Paused))
			h.record(r.ID, IntentPromoteFull, 0)
			r = h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == 3 })
			h.wantCanary("stage 3", v2Only, 2, 2, both...)
			if got := Describe(r, h.clock.Now()); got != "stage 3/3 · 100 % · waiting for approval to finish 0s" {
				h.t.Errorf("Describe = %q", got)
			}
			rollback(h, r, orig)
		}},
		{"promote 50 at stage 1, then continue to the end", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.drive(r.ID, phaseIs(Paused))
			h.record(r.ID, IntentPromote, 50)
			h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == 2 })
			h.wantCanary("promoted to 50", split50, 2, 2, both...)
			_, err := h.e.Record(h.t.Context(), r.ID, Intent{Kind: IntentPromote, Percent: 50, Actor: "bob", Surface: SurfaceCLI})
			if !errors.Is(err, ErrConflict) {
				h.t.Errorf("promote 50 again: %v, want ErrConflict", err)
			}
			h.record(r.ID, IntentContinue, 0)
			h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == 3 })
			h.record(r.ID, IntentContinue, 0)
			h.drive(r.ID, phaseIs(Succeeded))
			h.drainOld(r.ID)
			h.wantOriginal(orig)
		}},
		{"promote 50 before the first step", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.record(r.ID, IntentPromote, 50)
			r = h.drive(r.ID, phaseIs(Paused))
			h.wantCanary("promoted to 50", split50, 2, 2, both...)
			if r.Stage != 2 || r.Percent != 50 {
				h.t.Errorf("stage %d percent %d, want 2 50", r.Stage, r.Percent)
			}
		}},
		{"pause before the first step, then continue", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.record(r.ID, IntentPause, 0)
			r = h.drive(r.ID, phaseIs(Paused))
			h.wantOriginal(orig) // paused before anything was applied
			if h.replicas("web-v2-0-0") != -1 {
				h.t.Error("v2 was deployed while paused")
			}
			if _, err := h.e.Record(h.t.Context(), r.ID, Intent{Kind: IntentPause, Actor: "bob", Surface: SurfaceAPI}); !errors.Is(err, ErrConflict) {
				h.t.Errorf("pause twice: %v, want ErrConflict", err)
			}
			h.record(r.ID, IntentContinue, 0)
			h.drive(r.ID, func(r Release) bool { return r.Phase == Paused && r.Stage == 1 })
			h.wantCanary("stage 1 after continue", split10, 2, 2, both...)
		}},
		{"continue when not paused is refused", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			_, err := h.e.Record(h.t.Context(), r.ID, Intent{Kind: IntentContinue, Actor: "bob", Surface: SurfaceMRComment})
			if !errors.Is(err, ErrConflict) || err.Error() != "continue release "+r.ID+": conflict: it is pending, not paused; continue only resumes a paused release" {
				h.t.Errorf("continue while pending: %v", err)
			}
		}},
		{"abort leaves the cluster as it is", func(h *harness, r Release, orig *v1alpha3.VirtualService) {
			h.drive(r.ID, phaseIs(Paused))
			h.record(r.ID, IntentAbort, 0)
			h.drive(r.ID, phaseIs(Aborted))
			h.wantCanary("aborted at stage 1", split10, 2, 2, both...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			orig := h.foreignVirtualService()
			h.initial(Canary, 2)
			tt.run(h, canaryV2(h, manual3...), orig)
		})
	}
}

func TestCanaryCreatesAndRestoresItsOwnVirtualService(t *testing.T) {
	h := newHarness(t)
	h.initial(Canary, 1)
	vs := h.virtualService()
	if vs.Labels["app.kubernetes.io/managed-by"] != "shipbot" {
		t.Errorf("labels %v", vs.Labels)
	}
	plain := istioRouter{r: &Release{App: "web"}}.plainSpec()
	h.wantOriginal(plain)
	r := h.create(h.release(Canary, "v1-0-0", "v2-0-0", 1, Stage{Target: 20, Continue: Manual}, Stage{Target: 100}))
	h.drive(r.ID, phaseIs(Paused))
	if got := h.virtualService().Spec.Http[0].Route; len(got) != 2 || got[1].Weight != 20 || got[1].Destination.Subset != "v2-0-0" {
		t.Errorf("route %v, want 80/20", got)
	}
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Succeeded))
	h.drainOld(r.ID)
	h.wantOriginal(plain)
}

package release

import (
	"fmt"
	"maps"
	"testing"

	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// seen is what a stage's routes do, read back from the apiserver in the
// same terms for either router.
type seen struct {
	weights map[string]int32 // backend (subset or Service) → weight, on the team's web route
	match   string           // the header route: "header=value → backend"; "" when there is none
	mirror  string           // the mirror on the web route: "backend percent"; "" when there is none
}

func (s seen) String() string {
	return fmt.Sprintf("weights %v, match %q, mirror %q", s.weights, s.match, s.mirror)
}

func (h *harness) seenIstio() seen {
	h.t.Helper()
	out := seen{weights: h.weights()}
	for _, r := range h.virtualService().Spec.Http {
		switch {
		case r.Name == matchRouteName:
			for k, v := range r.Match[0].Headers {
				out.match = fmt.Sprintf("%s=%s → %s", k, v.GetExact(), r.Route[0].Destination.Subset)
			}
		case r.Name == "web" && r.Mirror != nil:
			out.mirror = fmt.Sprintf("%s %v", r.Mirror.Subset, r.MirrorPercentage.GetValue())
		}
	}
	return out
}

func (h *harness) seenGateway() seen {
	h.t.Helper()
	out := seen{weights: h.backendWeights()}
	for _, r := range h.httpRoute().Spec.Rules {
		switch ptr.Deref(r.Name, "") {
		case matchRouteName:
			for _, m := range r.Matches[0].Headers {
				out.match = fmt.Sprintf("%s=%s → %s", m.Name, m.Value, r.BackendRefs[0].Name)
			}
		case "web":
			for _, f := range r.Filters {
				if f.Type == gatewayv1.HTTPRouteFilterRequestMirror {
					out.mirror = fmt.Sprintf("%s %d", f.RequestMirror.BackendRef.Name, ptr.Deref(f.RequestMirror.Percent, 100))
				}
			}
		}
	}
	return out
}

// routerCase is one router under the same scenario: how to set it up,
// read its routes and check that the original is back.
type routerCase struct {
	router Router
	v1, v2 string                  // the backends of v1 and v2 by this router's naming
	setup  func(h *harness) func() // creates the team's route; returns the check that it is back as it was
	seen   func(h *harness) seen
}

var routerCases = []routerCase{
	{RouterIstio, "v1-0-0", "v2-0-0",
		func(h *harness) func() { orig := h.foreignVirtualService(); return func() { h.wantOriginal(orig) } },
		(*harness).seenIstio},
	{RouterGatewayAPI, "web-v1-0-0", "web-v2-0-0",
		func(h *harness) func() { orig := h.foreignHTTPRoute(); return func() { h.wantRouteOriginal(orig) } },
		(*harness).seenGateway},
}

func routedRelease(h *harness, router Router, from, to string, stages ...Stage) Release {
	r := h.release(Canary, from, to, 2, stages...)
	r.Router = router
	return h.create(r)
}

// headerMirrorWeights is a header stage, a mirror stage, then weights,
// each waiting for approval.
var headerMirrorWeights = []Stage{
	{Match: &Match{Headers: map[string]string{"x-canary": "true"}}, Continue: Manual},
	{Mirror: 20, Continue: Manual},
	{Target: 10, Continue: Manual},
	{Target: 100},
}

func TestHeaderAndMirrorStages(t *testing.T) {
	for _, rc := range routerCases {
		t.Run(string(rc.router)+"/success", func(t *testing.T) {
			h := newHarness(t)
			original := rc.setup(h)
			h.drive(routedRelease(h, rc.router, "", "v1-0-0").ID, phaseIs(Succeeded))
			r := routedRelease(h, rc.router, "v1-0-0", "v2-0-0", headerMirrorWeights...)
			all1 := map[string]int32{rc.v1: 100, rc.v2: 0}
			steps := []seen{
				{weights: all1, match: "x-canary=true → " + rc.v2},
				{weights: all1, mirror: rc.v2 + " 20"},
				{weights: map[string]int32{rc.v1: 90, rc.v2: 10}},
			}
			for i, want := range steps {
				got := h.drive(r.ID, phaseIs(Paused))
				h.wantSeen(rc, fmt.Sprintf("stage %d (%s)", i+1, Describe(got, h.clock.Now())), want)
				h.record(r.ID, IntentContinue, 0)
			}
			h.drive(r.ID, phaseIs(Succeeded))
			h.wantSeen(rc, "succeeded, in the scale-down delay", seen{weights: map[string]int32{rc.v1: 0, rc.v2: 100}})
			h.drainOld(r.ID)
			original()
		})
		t.Run(string(rc.router)+"/rollback", func(t *testing.T) {
			h := newHarness(t)
			original := rc.setup(h)
			h.drive(routedRelease(h, rc.router, "", "v1-0-0").ID, phaseIs(Succeeded))
			r := routedRelease(h, rc.router, "v1-0-0", "v2-0-0", headerMirrorWeights...)
			h.drive(r.ID, phaseIs(Paused))
			h.record(r.ID, IntentContinue, 0)
			h.drive(r.ID, phaseIs(Paused))
			h.wantSeen(rc, "mirror stage", seen{weights: map[string]int32{rc.v1: 100, rc.v2: 0}, mirror: rc.v2 + " 20"})
			h.record(r.ID, IntentRollback, 0)
			h.drive(r.ID, phaseIs(RolledBack))
			h.wantSeen(rc, "rolled back, in the scale-down delay", seen{weights: map[string]int32{rc.v1: 100, rc.v2: 0}})
			h.drainOld(r.ID)
			original()
		})
	}
}

func (h *harness) wantSeen(rc routerCase, stage string, want seen) {
	h.t.Helper()
	got := rc.seen(h)
	if !maps.Equal(got.weights, want.weights) || got.match != want.match || got.mirror != want.mirror {
		h.t.Errorf("%s: %s\nwant %s", stage, got, want)
	}
}

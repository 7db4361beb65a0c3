package release

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// foreignHTTPRoute creates the app team's HTTPRoute on their Gateway: a rule
// of theirs to another Service, and the rule to web with a timeout that
// shipbot must keep. It returns the spec as the apiserver stored it.
func (h *harness) foreignHTTPRoute() gatewayv1.HTTPRouteSpec {
	h.t.Helper()
	prefix := func(p string) []gatewayv1.HTTPRouteMatch {
		return []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(p)}}}
	}
	ref := func(name string, port int32) []gatewayv1.HTTPBackendRef {
		return []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(port)),
		}}}}
	}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: h.ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public"}}},
			Hostnames:       []gatewayv1.Hostname{"web.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{Name: ptr.To(gatewayv1.SectionName("legacy")), Matches: prefix("/legacy"), BackendRefs: ref("legacy", 80)},
				{Name: ptr.To(gatewayv1.SectionName("web")), Matches: prefix("/"), BackendRefs: ref("web", 8080),
					Timeouts: &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("10s"))}},
			},
		},
	}
	got, err := h.cluster.Gateway.GatewayV1().HTTPRoutes(h.ns).Create(h.t.Context(), route, metav1.CreateOptions{FieldManager: "team"})
	if err != nil {
		h.t.Fatal(err)
	}
	return got.Spec
}

func (h *harness) httpRoute() *gatewayv1.HTTPRoute {
	h.t.Helper()
	route, err := h.cluster.Gateway.GatewayV1().HTTPRoutes(h.ns).Get(h.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return route
}

// backendWeights reads the weights of the HTTPRoute's rule named web.
func (h *harness) backendWeights() map[string]int32 {
	h.t.Helper()
	out := map[string]int32{}
	for _, rule := range h.httpRoute().Spec.Rules {
		if ptr.Deref(rule.Name, "") != "web" {
			continue
		}
		for _, b := range rule.BackendRefs {
			out[string(b.Name)] = ptr.Deref(b.Weight, 1)
		}
	}
	return out
}

// wantRouteOriginal checks the HTTPRoute is back to spec, with no trace of shipbot.
func (h *harness) wantRouteOriginal(spec gatewayv1.HTTPRouteSpec) {
	h.t.Helper()
	route := h.httpRoute()
	if !equality.Semantic.DeepEqual(route.Spec, spec) {
		got, _ := json.Marshal(route.Spec)
		want, _ := json.Marshal(spec)
		h.t.Errorf("HTTPRoute spec =\n  %s\nwant the original\n  %s", got, want)
	}
	if _, ok := route.Annotations[AnnotationOriginal]; ok {
		h.t.Errorf("annotation %s is still there", AnnotationOriginal)
	}
}

// wantGatewayStage checks the weights, that the team's rule and the web
// rule's own fields are untouched, and the version Services.
func (h *harness) wantGatewayStage(stage string, orig gatewayv1.HTTPRouteSpec, weights map[string]int32, services ...string) {
	h.t.Helper()
	if got := h.backendWeights(); !maps.Equal(got, weights) {
		h.t.Errorf("%s: backend weights %v, want %v", stage, got, weights)
	}
	route := h.httpRoute()
	if !equality.Semantic.DeepEqual(route.Spec.Rules[0], orig.Rules[0]) || !slices.Equal(route.Spec.Hostnames, orig.Hostnames) {
		h.t.Errorf("%s: shipbot touched what it does not own: %+v", stage, route.Spec)
	}
	if web := route.Spec.Rules[1]; web.Timeouts == nil || *web.Timeouts.Request != "10s" || *web.BackendRefs[0].Port != 8080 {
		h.t.Errorf("%s: shipbot's rule lost its other fields: %+v", stage, web)
	}
	if got := h.versionServices(); !slices.Equal(got, services) {
		h.t.Errorf("%s: version services %v, want %v", stage, got, services)
	}
}

// versionServices lists the version Services as name=selected version.
func (h *harness) versionServices() []string {
	h.t.Helper()
	list, err := h.tc.Client().CoreV1().Services(h.ns).List(h.t.Context(), metav1.ListOptions{LabelSelector: LabelBackendOf + "=web"})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name+"="+s.Spec.Selector[LabelVersion])
	}
	slices.Sort(out)
	return out
}

func gatewayRelease(h *harness, from, to string, stages ...Stage) Release {
	r := h.release(Canary, from, to, 2, stages...)
	r.Router = RouterGatewayAPI
	return h.create(r)
}

var (
	svc1 = "web-v1-0-0=v1-0-0"
	svc2 = "web-v2-0-0=v2-0-0"
)

func TestGatewayAPICanaryMovesHTTPRouteWeights(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignHTTPRoute()
	h.drive(gatewayRelease(h, "", "v1-0-0").ID, phaseIs(Succeeded))
	h.wantRouteOriginal(orig)

	r := gatewayRelease(h, "v1-0-0", "v2-0-0", manual3...)
	start := time.Now()
	h.drive(r.ID, phaseIs(Paused))
	t.Logf("stage 1 (10 %%) in effect %s after the first Step", time.Since(start).Round(time.Millisecond))
	h.wantGatewayStage("stage 1", orig, map[string]int32{"web-v1-0-0": 90, "web-v2-0-0": 10}, svc1, svc2)
	var saved gatewayv1.HTTPRouteSpec
	if err := json.Unmarshal([]byte(h.httpRoute().Annotations[AnnotationOriginal]), &saved); err != nil || !equality.Semantic.DeepEqual(saved, orig) {
		t.Errorf("original annotation = %+v (%v), want the team's spec", saved, err)
	}
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Paused))
	h.wantGatewayStage("stage 2", orig, map[string]int32{"web-v1-0-0": 50, "web-v2-0-0": 50}, svc1, svc2)
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Paused))
	h.wantGatewayStage("stage 3", orig, map[string]int32{"web-v1-0-0": 0, "web-v2-0-0": 100}, svc1, svc2)
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Succeeded))
	h.drainOld(r.ID)
	h.wantRouteOriginal(orig)
	if got := h.versionServices(); !slices.Equal(got, []string{svc2}) {
		t.Errorf("after success: version services %v, want only v2's", got)
	}
}

func TestGatewayAPIRollbackRestoresTheOriginal(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignHTTPRoute()
	h.drive(gatewayRelease(h, "", "v1-0-0").ID, phaseIs(Succeeded))
	r := gatewayRelease(h, "v1-0-0", "v2-0-0", manual3...)
	h.drive(r.ID, phaseIs(Paused))
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Paused))
	h.wantGatewayStage("stage 2", orig, map[string]int32{"web-v1-0-0": 50, "web-v2-0-0": 50}, svc1, svc2)
	h.record(r.ID, IntentRollback, 0)
	h.drive(r.ID, phaseIs(RolledBack))
	if got := h.backendWeights(); !maps.Equal(got, map[string]int32{"web-v1-0-0": 100, "web-v2-0-0": 0}) {
		t.Errorf("rolled back, in the scale-down delay: weights %v, want all on v1", got)
	}
	h.drainOld(r.ID)
	h.wantRouteOriginal(orig)
	if got := h.versionServices(); !slices.Equal(got, []string{svc1}) {
		t.Errorf("after rollback: version services %v, want only v1's", got)
	}
}

func TestGatewayAPICreatesAndRestoresItsOwnHTTPRoute(t *testing.T) {
	h := newHarness(t)
	h.drive(gatewayRelease(h, "", "v1-0-0").ID, phaseIs(Succeeded))
	route := h.httpRoute()
	if route.Labels["app.kubernetes.io/managed-by"] != "shipbot" {
		t.Errorf("labels %v", route.Labels)
	}
	plain := route.Spec
	if p := plain.ParentRefs; len(p) != 1 || p[0].Name != "web" || ptr.Deref(p[0].Kind, "") != "Service" {
		t.Errorf("parentRefs %+v, want the app's Service (mesh)", p)
	}
	if b := plain.Rules[0].BackendRefs; len(b) != 1 || b[0].Name != "web" || *b[0].Port != 8080 {
		t.Errorf("backendRefs %+v, want the app's Service on its port", b)
	}
	r := gatewayRelease(h, "v1-0-0", "v2-0-0", Stage{Target: 20, Continue: Manual}, Stage{Target: 100})
	h.drive(r.ID, phaseIs(Paused))
	b := h.httpRoute().Spec.Rules[0].BackendRefs
	if len(b) != 2 || b[1].Name != "web-v2-0-0" || *b[1].Weight != 20 || *b[0].Weight != 80 {
		t.Errorf("backendRefs %+v, want 80/20", b)
	}
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Succeeded))
	h.drainOld(r.ID)
	h.wantRouteOriginal(plain)
}

func TestGatewayAPINextReleaseWhileTheOldVersionDrains(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignHTTPRoute()
	h.drive(gatewayRelease(h, "", "v1-0-0").ID, phaseIs(Succeeded))
	r2 := gatewayRelease(h, "v1-0-0", "v2-0-0", Stage{Target: 100})
	h.drive(r2.ID, phaseIs(Succeeded))
	// v1 is in its scale-down delay: the rule still names its Service, at 0.
	if got := h.backendWeights(); !maps.Equal(got, map[string]int32{"web-v1-0-0": 0, "web-v2-0-0": 100}) {
		t.Fatalf("after v2: weights %v", got)
	}
	r3 := gatewayRelease(h, "v2-0-0", "v3-0-0", Stage{Target: 10, Continue: Manual}, Stage{Target: 100})
	h.drive(r3.ID, phaseIs(Paused))
	if got := h.backendWeights(); !maps.Equal(got, map[string]int32{"web-v2-0-0": 90, "web-v3-0-0": 10}) {
		t.Errorf("v3 at 10 %% while v1 drains: weights %v", got)
	}
	h.drainOld(r2.ID)
	h.record(r3.ID, IntentContinue, 0)
	h.drive(r3.ID, phaseIs(Succeeded))
	h.drainOld(r3.ID)
	h.wantRouteOriginal(orig)
}

package release

import (
	"context"
	"maps"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/cluster"
)

func TestDetectIstioFindsV1(t *testing.T) {
	h := newHarness(t)
	v, err := detectIstio(t.Context(), h.cluster.Kube.Kube.Discovery())
	if err != nil || v != IstioV1 {
		t.Fatalf("detectIstio = %q, %v; want v1 on a cluster with today's CRDs", v, err)
	}
}

// v1beta1VirtualService creates the team's VirtualService, as
// foreignVirtualService does, through the only version served.
func (h *harness) v1beta1VirtualService() *v1alpha3.VirtualService {
	h.t.Helper()
	spec := &v1alpha3.VirtualService{
		Hosts: []string{"web"},
		Http: []*v1alpha3.HTTPRoute{{
			Name:    "web",
			Route:   []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: "web", Port: &v1alpha3.PortSelector{Number: 8080}}}},
			Retries: &v1alpha3.HTTPRetry{Attempts: 3},
		}},
	}
	vs := &networkingv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: h.ns}}
	proto.Merge(&vs.Spec, spec)
	if _, err := h.cluster.Istio.NetworkingV1beta1().VirtualServices(h.ns).Create(h.t.Context(), vs, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	return spec
}

func (h *harness) v1beta1Weights() (map[string]int32, *networkingv1beta1.VirtualService) {
	h.t.Helper()
	vs, err := h.cluster.Istio.NetworkingV1beta1().VirtualServices(h.ns).Get(h.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]int32{}
	for _, d := range vs.Spec.Http[0].Route {
		out[d.Destination.Subset] = d.Weight
	}
	return out, vs
}

func TestCanaryOnAnIstioServingOnlyV1beta1(t *testing.T) {
	cluster.Require(t, testCluster)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	tc, err := cluster.Start(ctx, cluster.Options{Istio: true, IstioVersions: []string{IstioV1beta1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Stop() })
	t.Logf("control plane serving networking.istio.io/v1beta1 only, up in %s", time.Since(start).Round(time.Millisecond))

	h := newHarnessOn(t, tc)
	if _, err := h.cluster.Istio.NetworkingV1().VirtualServices(h.ns).List(t.Context(), metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("list v1 VirtualServices: %v; want NotFound, the version not served", err)
	}
	if v, err := detectIstio(t.Context(), h.cluster.Kube.Kube.Discovery()); err != nil || v != IstioV1beta1 {
		t.Fatalf("detectIstio = %q, %v; want v1beta1", v, err)
	}
	orig := h.v1beta1VirtualService()
	h.initial(Canary, 2)
	r := canaryV2(h, manual3...)
	h.drive(r.ID, phaseIs(Paused))
	if got, _ := h.v1beta1Weights(); !maps.Equal(got, split10) {
		t.Errorf("stage 1: weights %v, want %v", got, split10)
	}
	dr, err := h.cluster.Istio.NetworkingV1beta1().DestinationRules(h.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil || len(dr.Spec.Subsets) != 2 {
		t.Errorf("destination rule %v (%v), want a subset per version", dr, err)
	}
	h.record(r.ID, IntentRollback, 0)
	h.drive(r.ID, phaseIs(RolledBack))
	h.drainOld(r.ID)
	if _, vs := h.v1beta1Weights(); !proto.Equal(&vs.Spec, orig) || vs.Annotations[AnnotationOriginal] != "" {
		t.Errorf("after rollback: %v, want the original %v", &vs.Spec, orig)
	}
}

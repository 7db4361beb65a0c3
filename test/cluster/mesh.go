package cluster

import (
	"context"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TeamVirtualService creates the VirtualService a team has for app in ns
// before shipbot releases it: one route to the app's Service on port 8080,
// owned by field manager "team".
func TeamVirtualService(ctx context.Context, ic istio.Interface, ns, app string) error {
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns}}
	proto.Merge(&vs.Spec, &v1alpha3.VirtualService{
		Hosts: []string{app},
		Http: []*v1alpha3.HTTPRoute{{Name: app, Route: []*v1alpha3.HTTPRouteDestination{
			{Destination: &v1alpha3.Destination{Host: app, Port: &v1alpha3.PortSelector{Number: 8080}}},
		}}},
	})
	_, err := ic.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{FieldManager: "team"})
	return err
}

// RouteWeights reads the route weights of VirtualService name in ns by
// destination subset; "" is a route to the plain Service. Istio reads a
// route's only destination without a weight as 100, and so does this.
func RouteWeights(ctx context.Context, ic istio.Interface, ns, name string) (map[string]int32, error) {
	vs, err := ic.NetworkingV1().VirtualServices(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return Weights(vs), nil
}

// Weights sums vs's HTTP route weights by destination subset, as
// RouteWeights does.
func Weights(vs *networkingv1.VirtualService) map[string]int32 {
	out := map[string]int32{}
	for _, h := range vs.Spec.Http {
		for _, d := range h.Route {
			w := d.Weight
			if len(h.Route) == 1 && w == 0 {
				w = 100
			}
			out[d.Destination.GetSubset()] += w
		}
	}
	return out
}

package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	drac "istio.io/client-go/pkg/applyconfiguration/networking/v1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/shipbot/shipbot/deployer/kube"
)

// AnnotationOriginal holds, as JSON, the VirtualService spec as it was before
// shipbot first touched it, so that rollback and the end of a release can put
// shipbot's routes back exactly as they were.
const AnnotationOriginal = "shipbot.io/original-spec"

// router steers the HTTP routes of one VirtualService that go to the app's
// host, and only those: other routes and fields belong to someone else. The
// VirtualService's http list is atomic under server-side apply, so it is
// read, changed in place and updated with optimistic concurrency instead.
type router struct {
	istio istio.Interface
	view  *view
	r     *Release
}

// owned reports whether a route is one of shipbot's: an HTTP route whose
// every destination is the app's Service, in any of its spellings.
func (rt router) owned(h *v1alpha3.HTTPRoute) bool {
	if len(h.Route) == 0 {
		return false
	}
	ns, svc := rt.r.Namespace, rt.r.serviceName()
	hosts := []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
	for _, d := range h.Route {
		if d.Destination == nil || !slices.Contains(hosts, d.Destination.Host) {
			return false
		}
	}
	return true
}

// plainSpec is the spec of a VirtualService that shipbot creates: one route
// to the app's Service, which is what the mesh does without one.
func (rt router) plainSpec() *v1alpha3.VirtualService {
	svc := rt.r.serviceName()
	return &v1alpha3.VirtualService{
		Hosts: []string{svc},
		Http:  []*v1alpha3.HTTPRoute{{Route: []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: svc}}}}},
	}
}

// ensure adopts the VirtualService: it creates it if missing, remembers its
// original spec and, if shipbot's routes are not split by version yet, splits
// them at the release's current percentage.
func (rt router) ensure(ctx context.Context) error {
	return rt.update(ctx, func(vs *networkingv1.VirtualService) error {
		if _, err := rt.weight(vs); errors.Is(err, errNotSplit) {
			rt.split(vs, rt.r.Percent)
		}
		return nil
	})
}

// setWeight sends percent of shipbot's routes to To and the rest to From.
func (rt router) setWeight(ctx context.Context, percent int) error {
	return rt.update(ctx, func(vs *networkingv1.VirtualService) error {
		rt.split(vs, percent)
		return nil
	})
}

// restore puts shipbot's routes back as the original spec had them and
// forgets the original. Other routes keep whatever they have now.
func (rt router) restore(ctx context.Context) error {
	return rt.update(ctx, func(vs *networkingv1.VirtualService) error {
		raw, ok := vs.Annotations[AnnotationOriginal]
		if !ok {
			return nil // never adopted, or already restored
		}
		orig := &v1alpha3.VirtualService{}
		if err := orig.UnmarshalJSON([]byte(raw)); err != nil {
			return fmt.Errorf("virtualservice %s: annotation %s: %w", vs.Name, AnnotationOriginal, err)
		}
		var origRoutes []*v1alpha3.HTTPRoute
		for _, h := range orig.Http {
			if rt.owned(h) {
				origRoutes = append(origRoutes, h)
			}
		}
		k := 0
		for _, h := range vs.Spec.Http {
			if rt.owned(h) && k < len(origRoutes) {
				h.Route = cloneDestinations(origRoutes[k].Route)
				k++
			}
		}
		delete(vs.Annotations, AnnotationOriginal)
		return nil
	})
}

var errNotSplit = errors.New("routes are not split by version")

// weight reads the share of shipbot's first route that goes to To.
func (rt router) weight(vs *networkingv1.VirtualService) (int, error) {
	for _, h := range vs.Spec.Http {
		if !rt.owned(h) {
			continue
		}
		for _, d := range h.Route {
			if d.Destination.Subset == rt.r.To.Name {
				if len(h.Route) == 1 {
					return 100, nil
				}
				return int(d.Weight), nil
			}
		}
		return 0, errNotSplit
	}
	return 0, errNotSplit
}

// split rewrites the destinations of shipbot's routes: From gets 100-percent,
// To gets percent. A destination's host, port and headers are kept.
func (rt router) split(vs *networkingv1.VirtualService, percent int) {
	for _, h := range vs.Spec.Http {
		if !rt.owned(h) {
			continue
		}
		tmpl := h.Route[0]
		var dests []*v1alpha3.HTTPRouteDestination
		if !rt.r.From.IsZero() {
			dests = append(dests, destination(tmpl, rt.r.From.Name, 100-percent))
		}
		h.Route = append(dests, destination(tmpl, rt.r.To.Name, percent))
	}
}

func destination(tmpl *v1alpha3.HTTPRouteDestination, subset string, weight int) *v1alpha3.HTTPRouteDestination {
	d := proto.Clone(tmpl).(*v1alpha3.HTTPRouteDestination)
	d.Destination.Subset = subset
	d.Weight = int32(weight)
	return d
}

func cloneDestinations(in []*v1alpha3.HTTPRouteDestination) []*v1alpha3.HTTPRouteDestination {
	out := make([]*v1alpha3.HTTPRouteDestination, len(in))
	for i, d := range in {
		out[i] = proto.Clone(d).(*v1alpha3.HTTPRouteDestination)
	}
	return out
}

// update reads the VirtualService (creating it if missing), lets change edit
// a copy and writes it back only if something changed, retrying on conflict.
// The first read comes from the informer; after a conflict, from the
// apiserver, which has the version that won.
func (rt router) update(ctx context.Context, change func(*networkingv1.VirtualService) error) error {
	vss := rt.istio.NetworkingV1().VirtualServices(rt.r.Namespace)
	name := rt.r.VirtualService
	read := rt.view.virtualService
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := read(ctx, name)
		read = func(ctx context.Context, name string) (*networkingv1.VirtualService, error) {
			return vss.Get(ctx, name, metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			cur, err = rt.create(ctx)
		}
		if err != nil {
			return fmt.Errorf("virtualservice %s/%s: %w", rt.r.Namespace, name, err)
		}
		next := cur.DeepCopy()
		if err := rt.remember(next); err != nil {
			return err
		}
		if err := change(next); err != nil {
			return err
		}
		if proto.Equal(&cur.Spec, &next.Spec) && maps.Equal(cur.Annotations, next.Annotations) {
			return nil
		}
		out, err := vss.Update(ctx, next, metav1.UpdateOptions{FieldManager: kube.FieldManager})
		if err != nil {
			return fmt.Errorf("virtualservice %s/%s: %w", rt.r.Namespace, name, err)
		}
		rt.view.wrote(ctx, kindVirtualService, out)
		return nil
	})
}

// remember stores the spec in the original annotation unless it is there,
// and checks that the VirtualService has a route for shipbot to steer.
func (rt router) remember(vs *networkingv1.VirtualService) error {
	if !slices.ContainsFunc(vs.Spec.Http, rt.owned) {
		return fmt.Errorf("virtualservice %s/%s: %w: no HTTP route goes only to host %s; add one for shipbot to steer",
			vs.Namespace, vs.Name, ErrInvalid, rt.r.serviceName())
	}
	if _, ok := vs.Annotations[AnnotationOriginal]; ok {
		return nil
	}
	raw, err := vs.Spec.MarshalJSON()
	if err != nil {
		return fmt.Errorf("virtualservice %s: %w", vs.Name, err)
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[AnnotationOriginal] = string(raw)
	return nil
}

func (rt router) create(ctx context.Context) (*networkingv1.VirtualService, error) {
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{
		Name: rt.r.VirtualService, Namespace: rt.r.Namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "shipbot", "app": rt.r.App},
	}}
	proto.Merge(&vs.Spec, rt.plainSpec())
	out, err := rt.istio.NetworkingV1().VirtualServices(rt.r.Namespace).Create(ctx, vs, metav1.CreateOptions{FieldManager: kube.FieldManager})
	if err == nil {
		rt.view.wrote(ctx, kindVirtualService, out)
	}
	return out, err
}

// currentWeight reads the share of traffic on To.
func (rt router) currentWeight(ctx context.Context) (int, error) {
	vs, err := rt.view.virtualService(ctx, rt.r.VirtualService)
	if err != nil {
		return 0, fmt.Errorf("virtualservice %s/%s: %w", rt.r.Namespace, rt.r.VirtualService, err)
	}
	return rt.weight(vs)
}

// applyDestinationRule server-side applies the app's DestinationRule with one
// subset per running version, if its host or subsets differ. Fields others
// set, such as a traffic policy, are left to them.
func applyDestinationRule(ctx context.Context, ic istio.Interface, v *view, r *Release, versions ...Revision) error {
	var subsets []*v1alpha3.Subset
	for _, v := range versions {
		if !v.IsZero() {
			subsets = append(subsets, &v1alpha3.Subset{Name: v.Name, Labels: map[string]string{LabelVersion: v.Name}})
		}
	}
	drs := ic.NetworkingV1().DestinationRules(r.Namespace)
	cur, err := v.destinationRule(ctx, r.App)
	if err == nil && cur.Spec.Host == r.serviceName() && subsetsEqual(cur.Spec.Subsets, subsets) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("destinationrule %s/%s: %w", r.Namespace, r.App, err)
	}
	ac := drac.DestinationRule(r.App, r.Namespace).WithLabels(map[string]string{"app.kubernetes.io/managed-by": "shipbot", "app": r.App})
	ac.Spec = &v1alpha3.DestinationRule{Host: r.serviceName(), Subsets: subsets}
	out, err := drs.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: kube.FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("destinationrule %s/%s: %w", r.Namespace, r.App, err)
	}
	v.wrote(ctx, kindDestinationRule, out)
	return nil
}

func subsetsEqual(a, b []*v1alpha3.Subset) bool {
	return slices.EqualFunc(a, b, func(x, y *v1alpha3.Subset) bool { return proto.Equal(x, y) })
}

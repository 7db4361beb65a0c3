package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// AnnotationOriginal holds, as JSON, the VirtualService spec as it was before
// shipbot first touched it, so that rollback and the end of a release can put
// shipbot's routes back exactly as they were.
const AnnotationOriginal = "shipbot.io/original-spec"

// istioRouter steers the HTTP routes of one VirtualService that go to the
// app's host, and only those: other routes and fields belong to someone
// else. The VirtualService's http list is atomic under server-side apply,
// so it is read, changed in place and updated with optimistic concurrency.
type istioRouter struct {
	api istioAPI // in the networking.istio.io version the cluster serves
	r   *Release
}

var _ trafficRouter = istioRouter{}

// owned reports whether a route is one of shipbot's: an HTTP route whose
// every destination is the app's Service, in any of its spellings, and
// not one shipbot added for a stage.
func (rt istioRouter) owned(h *v1alpha3.HTTPRoute) bool {
	if len(h.Route) == 0 || strings.HasPrefix(h.Name, routeNamePrefix) {
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

func isAddedRoute(h *v1alpha3.HTTPRoute) bool { return strings.HasPrefix(h.Name, routeNamePrefix) }

// plainSpec is the spec of a VirtualService that shipbot creates: one route
// to the app's Service, which is what the mesh does without one.
func (rt istioRouter) plainSpec() *v1alpha3.VirtualService {
	svc := rt.r.serviceName()
	return &v1alpha3.VirtualService{
		Hosts: []string{svc},
		Http:  []*v1alpha3.HTTPRoute{{Route: []*v1alpha3.HTTPRouteDestination{{Destination: &v1alpha3.Destination{Host: svc}}}}},
	}
}

// backends applies the DestinationRule with a subset per version.
func (rt istioRouter) backends(ctx context.Context, versions ...Revision) error {
	return applyDestinationRule(ctx, rt.api, rt.r, versions...)
}

// ensure adopts the VirtualService: it creates it if missing, remembers its
// original spec and, if shipbot's routes are not split by version yet, splits
// them at the release's current percentage.
func (rt istioRouter) ensure(ctx context.Context) error {
	return rt.update(ctx, func(vs *networkingv1.VirtualService) error {
		if _, err := rt.weight(vs); errors.Is(err, errNotSplit) {
			rt.apply(vs, routing{weight: rt.r.Percent})
		}
		return nil
	})
}

// steer makes shipbot's routes do what want says.
func (rt istioRouter) steer(ctx context.Context, want routing) error {
	return rt.update(ctx, func(vs *networkingv1.VirtualService) error {
		rt.apply(vs, want)
		return nil
	})
}

// restore puts shipbot's routes back as the original spec had them, drops
// the routes it added and forgets the original. Other routes keep whatever
// they have now.
func (rt istioRouter) restore(ctx context.Context) error {
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
		vs.Spec.Http = slices.DeleteFunc(vs.Spec.Http, isAddedRoute)
		k := 0
		for _, h := range vs.Spec.Http {
			if rt.owned(h) && k < len(origRoutes) {
				o := origRoutes[k]
				h.Route = cloneDestinations(o.Route)
				h.Mirror, h.MirrorPercentage = o.Mirror, o.MirrorPercentage
				k++
			}
		}
		delete(vs.Annotations, AnnotationOriginal)
		return nil
	})
}

var errNotSplit = errors.New("routes are not split by version")

// weight reads the share of shipbot's first route that goes to To.
func (rt istioRouter) weight(vs *networkingv1.VirtualService) (int, error) {
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

// apply rewrites shipbot's routes: From gets 100-weight, To gets weight,
// a destination's host, port and headers kept; the mirror is set or
// cleared, and a header route to To is put before the first of them.
func (rt istioRouter) apply(vs *networkingv1.VirtualService, want routing) {
	vs.Spec.Http = slices.DeleteFunc(vs.Spec.Http, isAddedRoute)
	first := -1
	for i, h := range vs.Spec.Http {
		if !rt.owned(h) {
			continue
		}
		if first < 0 {
			first = i
		}
		tmpl := h.Route[0]
		var dests []*v1alpha3.HTTPRouteDestination
		if !rt.r.From.IsZero() {
			dests = append(dests, destination(tmpl, rt.r.From.Name, 100-want.weight))
		}
		h.Route = append(dests, destination(tmpl, rt.r.To.Name, want.weight))
		rt.mirror(h, tmpl, want.mirror)
	}
	if len(want.match) > 0 && first >= 0 {
		vs.Spec.Http = slices.Insert(vs.Spec.Http, first, rt.matchRoute(vs.Spec.Http[first], want.match))
	}
}

// mirror copies percent of a route's requests to To, or, with 0, removes
// a mirror to one of the release's versions; a team's own mirror to
// another host is left alone.
func (rt istioRouter) mirror(h *v1alpha3.HTTPRoute, tmpl *v1alpha3.HTTPRouteDestination, percent int) {
	if percent > 0 {
		d := proto.Clone(tmpl.Destination).(*v1alpha3.Destination)
		d.Subset = rt.r.To.Name
		h.Mirror, h.MirrorPercentage = d, &v1alpha3.Percent{Value: float64(percent)}
		return
	}
	if m := h.Mirror; m != nil && m.Subset != "" && (m.Subset == rt.r.To.Name || m.Subset == rt.r.From.Name) {
		h.Mirror, h.MirrorPercentage = nil, nil
	}
}

// matchRoute is a copy of route that only takes requests that also carry
// the headers, and sends them all to To.
func (rt istioRouter) matchRoute(route *v1alpha3.HTTPRoute, headers map[string]string) *v1alpha3.HTTPRoute {
	h := proto.Clone(route).(*v1alpha3.HTTPRoute)
	h.Name, h.Mirror, h.MirrorPercentage = matchRouteName, nil, nil
	h.Route = []*v1alpha3.HTTPRouteDestination{destination(route.Route[0], rt.r.To.Name, 100)}
	if len(h.Match) == 0 {
		h.Match = []*v1alpha3.HTTPMatchRequest{{}}
	}
	for _, m := range h.Match {
		if m.Headers == nil {
			m.Headers = map[string]*v1alpha3.StringMatch{}
		}
		for k, v := range headers {
			m.Headers[k] = &v1alpha3.StringMatch{MatchType: &v1alpha3.StringMatch_Exact{Exact: v}}
		}
	}
	return h
}

// routingOf reads what shipbot's routes of vs do.
func (rt istioRouter) routingOf(vs *networkingv1.VirtualService) (routing, error) {
	w, err := rt.weight(vs)
	if err != nil {
		return routing{}, err
	}
	out := routing{weight: w}
	for _, h := range vs.Spec.Http {
		switch {
		case h.Name == matchRouteName && len(h.Match) > 0:
			out.match = map[string]string{}
			for k, v := range h.Match[0].Headers {
				out.match[k] = v.GetExact()
			}
		case rt.owned(h) && h.Mirror != nil && h.Mirror.Subset == rt.r.To.Name && out.mirror == 0:
			out.mirror = 100
			if h.MirrorPercentage != nil {
				out.mirror = int(h.MirrorPercentage.Value)
			}
		}
	}
	return out, nil
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
func (rt istioRouter) update(ctx context.Context, change func(*networkingv1.VirtualService) error) error {
	name := rt.r.VirtualService
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := rt.api.getVS(ctx, rt.r.Namespace, name)
		if apierrors.IsNotFound(err) {
			cur, err = rt.create(ctx)
		}
		if err != nil {
			return fmt.Errorf("virtualservice %s/%s (networking.istio.io/%s): %w", rt.r.Namespace, name, rt.api.version(), err)
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
		_, err = rt.api.updateVS(ctx, next)
		if err != nil {
			return fmt.Errorf("virtualservice %s/%s: %w", rt.r.Namespace, name, err)
		}
		return nil
	})
}

// remember stores the spec in the original annotation unless it is there,
// and checks that the VirtualService has a route for shipbot to steer.
func (rt istioRouter) remember(vs *networkingv1.VirtualService) error {
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

func (rt istioRouter) create(ctx context.Context) (*networkingv1.VirtualService, error) {
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{
		Name: rt.r.VirtualService, Namespace: rt.r.Namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "shipbot", "app": rt.r.App},
	}}
	proto.Merge(&vs.Spec, rt.plainSpec())
	return rt.api.createVS(ctx, vs)
}

// current reads what shipbot's routes do now.
func (rt istioRouter) current(ctx context.Context) (routing, error) {
	vs, err := rt.api.getVS(ctx, rt.r.Namespace, rt.r.VirtualService)
	if err != nil {
		return routing{}, fmt.Errorf("virtualservice %s/%s: %w", rt.r.Namespace, rt.r.VirtualService, err)
	}
	return rt.routingOf(vs)
}

// applyDestinationRule server-side applies the app's DestinationRule with one
// subset per running version, if its host or subsets differ. Fields others
// set, such as a traffic policy, are left to them.
func applyDestinationRule(ctx context.Context, api istioAPI, r *Release, versions ...Revision) error {
	var subsets []*v1alpha3.Subset
	for _, v := range versions {
		if !v.IsZero() {
			subsets = append(subsets, &v1alpha3.Subset{Name: v.Name, Labels: map[string]string{LabelVersion: v.Name}})
		}
	}
	cur, err := api.getDR(ctx, r.Namespace, r.App)
	if err == nil && cur.Host == r.serviceName() && subsetsEqual(cur.Subsets, subsets) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("destinationrule %s/%s: %w", r.Namespace, r.App, err)
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "shipbot", "app": r.App}
	if err := api.applyDR(ctx, r.Namespace, r.App, labels, &v1alpha3.DestinationRule{Host: r.serviceName(), Subsets: subsets}); err != nil {
		return fmt.Errorf("destinationrule %s/%s: %w", r.Namespace, r.App, err)
	}
	return nil
}

func subsetsEqual(a, b []*v1alpha3.Subset) bool {
	return slices.EqualFunc(a, b, func(x, y *v1alpha3.Subset) bool { return proto.Equal(x, y) })
}

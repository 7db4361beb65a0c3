package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipbot/shipbot/deployer/kube"
)

// gatewayRouter steers the rules of one HTTPRoute whose backends are the
// app's Service, and only those: other rules and fields belong to someone
// else. Each version is reached through a Service of its own,
// <service>-<version>, that selects only its pods; shipbot's rules send
// weighted shares to those. Rules are an atomic list under server-side
// apply, so the route is read, changed and updated with optimistic
// concurrency, as the Istio router does with a VirtualService.
type gatewayRouter struct {
	gw gateway.Interface
	w  *workloads
	r  *Release
	// known are the app's version Services that exist (load): a rule
	// may still send to an older version's, left by a release whose
	// scale-down is pending, and it is shipbot's rule all the same.
	known []string
}

// load reads which version Services of the app exist.
func (rt gatewayRouter) load(ctx context.Context) (gatewayRouter, error) {
	names, err := rt.w.versionServiceNames(ctx, rt.r)
	rt.known = names
	return rt, err
}

var _ trafficRouter = gatewayRouter{}

// versionService is the Service that selects only rev's pods.
func versionService(r *Release, rev Revision) string { return r.serviceName() + "-" + rev.Name }

// owned reports whether a rule is one of shipbot's: every backend is the
// app's Service, or the Service of one of the release's versions, and it is
// not a rule shipbot added for a stage.
func (rt gatewayRouter) owned(rule *gatewayv1.HTTPRouteRule) bool {
	if len(rule.BackendRefs) == 0 || strings.HasPrefix(string(ptr.Deref(rule.Name, "")), routeNamePrefix) {
		return false
	}
	names := append([]string{rt.r.serviceName(), versionService(rt.r, rt.r.To)}, rt.known...)
	if !rt.r.From.IsZero() {
		names = append(names, versionService(rt.r, rt.r.From))
	}
	for _, b := range rule.BackendRefs {
		if !rt.isService(b.BackendObjectReference) || !slices.Contains(names, string(b.Name)) {
			return false
		}
	}
	return true
}

// isService reports whether a reference is a core Service in the app's namespace.
func (rt gatewayRouter) isService(ref gatewayv1.BackendObjectReference) bool {
	return ptr.Deref(ref.Group, "") == "" && ptr.Deref(ref.Kind, "Service") == "Service" &&
		ptr.Deref(ref.Namespace, gatewayv1.Namespace(rt.r.Namespace)) == gatewayv1.Namespace(rt.r.Namespace)
}

func isAddedRule(rule gatewayv1.HTTPRouteRule) bool {
	return strings.HasPrefix(string(ptr.Deref(rule.Name, "")), routeNamePrefix)
}

// backends applies a Service per version and deletes the app's other
// version Services that no rule of the HTTPRoute sends to any more: one a
// rule still names, at weight 0 while its pods drain, goes once the rule
// is restored.
func (rt gatewayRouter) backends(ctx context.Context, versions ...Revision) error {
	keep := map[string]bool{}
	route, err := rt.gw.GatewayV1().HTTPRoutes(rt.r.Namespace).Get(ctx, rt.r.HTTPRoute, metav1.GetOptions{})
	switch {
	case err == nil:
		for _, rule := range route.Spec.Rules {
			for _, b := range rule.BackendRefs {
				keep[string(b.Name)] = true
			}
		}
	case !kerrors.IsNotFound(err):
		return fmt.Errorf("httproute %s/%s: %w", rt.r.Namespace, rt.r.HTTPRoute, err)
	}
	return rt.w.applyVersionServices(ctx, rt.r, keep, versions...)
}

// ensure adopts the HTTPRoute: it creates it if missing, remembers its
// original spec and, if shipbot's rules are not split by version yet,
// splits them at the release's current percentage.
func (rt gatewayRouter) ensure(ctx context.Context) error {
	rt, err := rt.load(ctx)
	if err != nil {
		return err
	}
	return rt.update(ctx, func(route *gatewayv1.HTTPRoute) error {
		if _, err := rt.weight(route); errors.Is(err, errNotSplit) {
			rt.apply(route, routing{weight: rt.r.Percent})
		}
		return nil
	})
}

// steer makes shipbot's rules do what want says.
func (rt gatewayRouter) steer(ctx context.Context, want routing) error {
	rt, err := rt.load(ctx)
	if err != nil {
		return err
	}
	return rt.update(ctx, func(route *gatewayv1.HTTPRoute) error {
		rt.apply(route, want)
		return nil
	})
}

// restore puts the backends and filters of shipbot's rules back as the
// original spec had them, drops the rules it added and forgets the
// original. Other rules keep whatever they have now.
func (rt gatewayRouter) restore(ctx context.Context) error {
	rt, err := rt.load(ctx)
	if err != nil {
		return err
	}
	return rt.update(ctx, func(route *gatewayv1.HTTPRoute) error {
		raw, ok := route.Annotations[AnnotationOriginal]
		if !ok {
			return nil // never adopted, or already restored
		}
		var orig gatewayv1.HTTPRouteSpec
		if err := json.Unmarshal([]byte(raw), &orig); err != nil {
			return fmt.Errorf("httproute %s: annotation %s: %w", route.Name, AnnotationOriginal, err)
		}
		var origRules []gatewayv1.HTTPRouteRule
		for i := range orig.Rules {
			if rt.owned(&orig.Rules[i]) {
				origRules = append(origRules, orig.Rules[i])
			}
		}
		route.Spec.Rules = slices.DeleteFunc(route.Spec.Rules, isAddedRule)
		k := 0
		for i := range route.Spec.Rules {
			if rule := &route.Spec.Rules[i]; rt.owned(rule) && k < len(origRules) {
				rule.BackendRefs = slices.Clone(origRules[k].BackendRefs)
				rule.Filters = slices.Clone(origRules[k].Filters)
				k++
			}
		}
		delete(route.Annotations, AnnotationOriginal)
		return nil
	})
}

// weight reads the share of shipbot's first rule that goes to To.
func (rt gatewayRouter) weight(route *gatewayv1.HTTPRoute) (int, error) {
	for i := range route.Spec.Rules {
		rule := &route.Spec.Rules[i]
		if !rt.owned(rule) {
			continue
		}
		for _, b := range rule.BackendRefs {
			if string(b.Name) == versionService(rt.r, rt.r.To) {
				if len(rule.BackendRefs) == 1 {
					return 100, nil
				}
				return int(ptr.Deref(b.Weight, 1)), nil
			}
		}
		return 0, errNotSplit
	}
	return 0, errNotSplit
}

// apply rewrites shipbot's rules: From's Service gets 100-weight, To's gets
// weight, a backend's port and filters kept; the mirror filter is set or
// removed, and a header rule to To is put before the first of them.
func (rt gatewayRouter) apply(route *gatewayv1.HTTPRoute, want routing) {
	route.Spec.Rules = slices.DeleteFunc(route.Spec.Rules, isAddedRule)
	first := -1
	for i := range route.Spec.Rules {
		rule := &route.Spec.Rules[i]
		if !rt.owned(rule) {
			continue
		}
		if first < 0 {
			first = i
		}
		tmpl := rule.BackendRefs[0]
		var refs []gatewayv1.HTTPBackendRef
		if !rt.r.From.IsZero() {
			refs = append(refs, rt.backendRef(tmpl, rt.r.From, 100-want.weight))
		}
		rule.BackendRefs = append(refs, rt.backendRef(tmpl, rt.r.To, want.weight))
		rule.Filters = rt.mirror(rule.Filters, tmpl, want.mirror)
	}
	if len(want.match) > 0 && first >= 0 {
		route.Spec.Rules = slices.Insert(route.Spec.Rules, first, rt.matchRule(route.Spec.Rules[first], want.match))
	}
}

// backendRef is a copy of tmpl to rev's own Service with the given weight.
func (rt gatewayRouter) backendRef(tmpl gatewayv1.HTTPBackendRef, rev Revision, weight int) gatewayv1.HTTPBackendRef {
	b := *tmpl.DeepCopy()
	b.Name = gatewayv1.ObjectName(versionService(rt.r, rev))
	b.Weight = ptr.To(int32(weight))
	return b
}

// mirror returns filters with a RequestMirror of percent to To's Service,
// or, with 0, without a mirror to one of the release's versions; a team's
// own mirror to another backend is left alone.
func (rt gatewayRouter) mirror(filters []gatewayv1.HTTPRouteFilter, tmpl gatewayv1.HTTPBackendRef, percent int) []gatewayv1.HTTPRouteFilter {
	ours := []string{versionService(rt.r, rt.r.To), versionService(rt.r, rt.r.From)}
	filters = slices.DeleteFunc(slices.Clone(filters), func(f gatewayv1.HTTPRouteFilter) bool {
		return f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil &&
			slices.Contains(ours, string(f.RequestMirror.BackendRef.Name))
	})
	if percent == 0 {
		return filters
	}
	ref := *tmpl.BackendObjectReference.DeepCopy()
	ref.Name = gatewayv1.ObjectName(versionService(rt.r, rt.r.To))
	return append(filters, gatewayv1.HTTPRouteFilter{
		Type:          gatewayv1.HTTPRouteFilterRequestMirror,
		RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: ref, Percent: ptr.To(int32(percent))},
	})
}

// matchRule is a copy of rule that only takes requests that also carry the
// headers, and sends them all to To.
func (rt gatewayRouter) matchRule(rule gatewayv1.HTTPRouteRule, headers map[string]string) gatewayv1.HTTPRouteRule {
	m := *rule.DeepCopy()
	m.Name = ptr.To(gatewayv1.SectionName(matchRouteName))
	m.BackendRefs = []gatewayv1.HTTPBackendRef{rt.backendRef(rule.BackendRefs[0], rt.r.To, 1)}
	m.Filters = rt.mirror(m.Filters, rule.BackendRefs[0], 0)
	if len(m.Matches) == 0 {
		m.Matches = []gatewayv1.HTTPRouteMatch{{}}
	}
	for i := range m.Matches {
		for _, k := range slices.Sorted(maps.Keys(headers)) {
			m.Matches[i].Headers = append(m.Matches[i].Headers, gatewayv1.HTTPHeaderMatch{
				Type: ptr.To(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(k), Value: headers[k],
			})
		}
	}
	return m
}

// routingOf reads what shipbot's rules of route do.
func (rt gatewayRouter) routingOf(route *gatewayv1.HTTPRoute) (routing, error) {
	w, err := rt.weight(route)
	if err != nil {
		return routing{}, err
	}
	out := routing{weight: w}
	to := versionService(rt.r, rt.r.To)
	for i := range route.Spec.Rules {
		rule := &route.Spec.Rules[i]
		if ptr.Deref(rule.Name, "") == matchRouteName && len(rule.Matches) > 0 {
			out.match = map[string]string{}
			for _, h := range rule.Matches[0].Headers {
				out.match[string(h.Name)] = h.Value
			}
			continue
		}
		if !rt.owned(rule) || out.mirror > 0 {
			continue
		}
		for _, f := range rule.Filters {
			if f.RequestMirror != nil && string(f.RequestMirror.BackendRef.Name) == to {
				out.mirror = int(ptr.Deref(f.RequestMirror.Percent, 100))
			}
		}
	}
	return out, nil
}

// current reads what shipbot's rules do now.
func (rt gatewayRouter) current(ctx context.Context) (routing, error) {
	rt, err := rt.load(ctx)
	if err != nil {
		return routing{}, err
	}
	route, err := rt.gw.GatewayV1().HTTPRoutes(rt.r.Namespace).Get(ctx, rt.r.HTTPRoute, metav1.GetOptions{})
	if err != nil {
		return routing{}, fmt.Errorf("httproute %s/%s: %w", rt.r.Namespace, rt.r.HTTPRoute, err)
	}
	return rt.routingOf(route)
}

// update reads the HTTPRoute (creating it if missing), lets change edit a
// copy and writes it back only if something changed, retrying on conflict.
func (rt gatewayRouter) update(ctx context.Context, change func(*gatewayv1.HTTPRoute) error) error {
	routes := rt.gw.GatewayV1().HTTPRoutes(rt.r.Namespace)
	name := rt.r.HTTPRoute
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := routes.Get(ctx, name, metav1.GetOptions{})
		if kerrors.IsNotFound(err) {
			cur, err = rt.create(ctx)
		}
		if err != nil {
			return fmt.Errorf("httproute %s/%s: %w", rt.r.Namespace, name, err)
		}
		next := cur.DeepCopy()
		if err := rt.remember(next); err != nil {
			return err
		}
		if err := change(next); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(cur.Spec, next.Spec) && maps.Equal(cur.Annotations, next.Annotations) {
			return nil
		}
		if _, err := routes.Update(ctx, next, metav1.UpdateOptions{FieldManager: kube.FieldManager}); err != nil {
			return fmt.Errorf("httproute %s/%s: %w", rt.r.Namespace, name, err)
		}
		return nil
	})
}

// remember stores the spec in the original annotation unless it is there,
// and checks that the HTTPRoute has a rule for shipbot to steer.
func (rt gatewayRouter) remember(route *gatewayv1.HTTPRoute) error {
	if !slices.ContainsFunc(route.Spec.Rules, func(rule gatewayv1.HTTPRouteRule) bool { return rt.owned(&rule) }) {
		return fmt.Errorf("httproute %s/%s: %w: no rule sends requests only to Service %s; add one for shipbot to steer",
			route.Namespace, route.Name, ErrInvalid, rt.r.serviceName())
	}
	if _, ok := route.Annotations[AnnotationOriginal]; ok {
		return nil
	}
	raw, err := json.Marshal(route.Spec)
	if err != nil {
		return fmt.Errorf("httproute %s: %w", route.Name, err)
	}
	if route.Annotations == nil {
		route.Annotations = map[string]string{}
	}
	route.Annotations[AnnotationOriginal] = string(raw)
	return nil
}

// create makes the HTTPRoute a mesh would use without one: attached to the
// app's Service (the Gateway API's mesh binding) and sending everything to
// it, on the Service's first port.
func (rt gatewayRouter) create(ctx context.Context) (*gatewayv1.HTTPRoute, error) {
	svc := rt.r.serviceName()
	port, err := rt.w.servicePort(ctx, rt.r)
	if err != nil {
		return nil, err
	}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{
			Name: rt.r.HTTPRoute, Namespace: rt.r.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "shipbot", "app": rt.r.App},
		},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: gatewayv1.ObjectName(svc),
			}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc), Port: ptr.To(port)},
			}}}}},
		},
	}
	return rt.gw.GatewayV1().HTTPRoutes(rt.r.Namespace).Create(ctx, route, metav1.CreateOptions{FieldManager: kube.FieldManager})
}

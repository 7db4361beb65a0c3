package release

import (
	"context"
	"fmt"

	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// view reads the objects of one namespace that a release steers: from the
// Scheduler's informers when it runs them, otherwise from the apiserver.
// An object the informer has not seen yet is read from the apiserver, so a
// create is never missed. Returned objects may be shared with the cache:
// callers copy before they change one.
type view struct {
	sp    *space // nil: every read goes to the apiserver
	ns    string
	kube  kubernetes.Interface
	istio istio.Interface
}

func newView(sp *space, c *Cluster, ns string) *view {
	return &view{sp: sp, ns: ns, kube: c.Kube.Kube, istio: c.Istio}
}

func (v *view) deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	if obj, ok := v.sp.of(ctx, kindDeployment).get(v.ns, name); ok {
		if d, ok := obj.(*appsv1.Deployment); ok {
			return d, nil
		}
	}
	return v.kube.AppsV1().Deployments(v.ns).Get(ctx, name, metav1.GetOptions{})
}

// deployments lists the namespace's Deployments that sel matches.
func (v *view) deployments(ctx context.Context, sel labels.Selector) ([]*appsv1.Deployment, error) {
	var out []*appsv1.Deployment
	if kc := v.sp.of(ctx, kindDeployment); kc != nil {
		items, err := kc.list(v.ns)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if d, ok := it.(*appsv1.Deployment); ok && sel.Matches(labels.Set(d.Labels)) {
				out = append(out, d)
			}
		}
		return out, nil
	}
	list, err := v.kube.AppsV1().Deployments(v.ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// cachedService returns the Service from the informer only: nil when the
// informer does not run or has not seen it.
func (v *view) cachedService(ctx context.Context, name string) *corev1.Service {
	obj, _ := v.sp.of(ctx, kindService).get(v.ns, name)
	s, _ := obj.(*corev1.Service)
	return s
}

func (v *view) virtualService(ctx context.Context, name string) (*networkingv1.VirtualService, error) {
	if obj, ok := v.sp.of(ctx, kindVirtualService).get(v.ns, name); ok {
		if vs, ok := obj.(*networkingv1.VirtualService); ok {
			return vs, nil
		}
	}
	return v.istio.NetworkingV1().VirtualServices(v.ns).Get(ctx, name, metav1.GetOptions{})
}

func (v *view) destinationRule(ctx context.Context, name string) (*networkingv1.DestinationRule, error) {
	if obj, ok := v.sp.of(ctx, kindDestinationRule).get(v.ns, name); ok {
		if dr, ok := obj.(*networkingv1.DestinationRule); ok {
			return dr, nil
		}
	}
	return v.istio.NetworkingV1().DestinationRules(v.ns).Get(ctx, name, metav1.GetOptions{})
}

// wrote feeds an object shipbot just wrote to the cache of its kind, so
// that the next read sees at least that write.
func (v *view) wrote(ctx context.Context, k kind, obj runtime.Object) {
	if v.sp == nil || obj == nil {
		return
	}
	v.sp.of(ctx, k).wrote(obj)
}

// wroteApplied feeds the result of a server-side apply of a Deployment or
// a Service to its cache.
func (v *view) wroteApplied(ctx context.Context, u *unstructured.Unstructured) error {
	if v.sp == nil || u == nil {
		return nil
	}
	var (
		obj runtime.Object
		k   kind
	)
	switch u.GroupVersionKind() {
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		obj, k = &appsv1.Deployment{}, kindDeployment
	case corev1.SchemeGroupVersion.WithKind("Service"):
		obj, k = &corev1.Service{}, kindService
	default:
		return nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("read back %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	v.wrote(ctx, k, obj)
	return nil
}

// cachedIstio reads the VirtualService and DestinationRule of a canary from
// the view's informers (which watch networking.istio.io/v1), and feeds them
// what it writes.
type cachedIstio struct {
	istioAPI
	view *view
}

func (a cachedIstio) getVS(ctx context.Context, ns, name string) (*networkingv1.VirtualService, error) {
	if ns != a.view.ns {
		return a.istioAPI.getVS(ctx, ns, name)
	}
	return a.view.virtualService(ctx, name)
}

func (a cachedIstio) createVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	out, err := a.istioAPI.createVS(ctx, vs)
	if err == nil {
		a.view.wrote(ctx, kindVirtualService, out)
	}
	return out, err
}

func (a cachedIstio) updateVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	out, err := a.istioAPI.updateVS(ctx, vs)
	if err == nil {
		a.view.wrote(ctx, kindVirtualService, out)
	}
	return out, err
}

func (a cachedIstio) getDR(ctx context.Context, ns, name string) (*v1alpha3.DestinationRule, error) {
	if ns != a.view.ns {
		return a.istioAPI.getDR(ctx, ns, name)
	}
	dr, err := a.view.destinationRule(ctx, name)
	if err != nil {
		return nil, err
	}
	return &dr.Spec, nil
}

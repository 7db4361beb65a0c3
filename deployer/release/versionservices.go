package release

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// LabelBackendOf marks a Service shipbot made for one version of an app,
// <service>-<version>, naming the app's Service; the Gateway API router
// sends weights to these.
const LabelBackendOf = "shipbot.io/backend-of"

// applyVersionServices server-side applies, for each version, a copy of the
// app's Service that selects only that version's pods, and deletes the
// app's other version Services, but those in also.
func (w *workloads) applyVersionServices(ctx context.Context, r *Release, also map[string]bool, versions ...Revision) error {
	objs, err := w.renderRev(ctx, r, r.To)
	if err != nil {
		return err
	}
	var keep []string
	var apply []*unstructured.Unstructured
	for _, v := range versions {
		if v.IsZero() {
			continue
		}
		svc := versionServiceObject(objs.service, r, v)
		keep = append(keep, svc.GetName())
		apply = append(apply, svc)
	}
	if err := w.kube.Apply(ctx, apply); err != nil {
		return err
	}
	for name := range also {
		keep = append(keep, name)
	}
	return w.deleteVersionServices(ctx, r, keep)
}

// versionServiceObject is the app's Service renamed for v, selecting v's
// pods only. Its cluster IPs are the apiserver's to choose.
func versionServiceObject(shared *unstructured.Unstructured, r *Release, v Revision) *unstructured.Unstructured {
	svc := shared.DeepCopy()
	svc.SetName(versionService(r, v))
	setLabel(svc, v.Name, "spec", "selector")
	unstructured.RemoveNestedField(svc.Object, "spec", "clusterIP")
	unstructured.RemoveNestedField(svc.Object, "spec", "clusterIPs")
	l := svc.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[LabelBackendOf], l[LabelVersion] = r.serviceName(), v.Name
	svc.SetLabels(l)
	annotate(svc, r)
	return svc
}

// versionServiceNames lists the app's version Services.
func (w *workloads) versionServiceNames(ctx context.Context, r *Release) ([]string, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelBackendOf: r.serviceName()}).String()
	list, err := w.kube.Kube.CoreV1().Services(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list version services of %s/%s: %w", w.kube.Name, r.Namespace, r.serviceName(), err)
	}
	names := make([]string, len(list.Items))
	for i, s := range list.Items {
		names[i] = s.Name
	}
	return names, nil
}

// deleteVersionServices deletes the app's version Services not in keep.
func (w *workloads) deleteVersionServices(ctx context.Context, r *Release, keep []string) error {
	names, err := w.versionServiceNames(ctx, r)
	if err != nil {
		return err
	}
	svcs := w.kube.Kube.CoreV1().Services(r.Namespace)
	for _, name := range names {
		if slices.Contains(keep, name) {
			continue
		}
		err := svcs.Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster %s: delete service %s/%s: %w", w.kube.Name, r.Namespace, name, err)
		}
	}
	return nil
}

// servicePort is the first port of the app's Service.
func (w *workloads) servicePort(ctx context.Context, r *Release) (gatewayv1.PortNumber, error) {
	svc, err := w.kube.Kube.CoreV1().Services(r.Namespace).Get(ctx, r.serviceName(), metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("cluster %s: read service %s/%s: %w", w.kube.Name, r.Namespace, r.serviceName(), err)
	}
	ports := svc.Spec.Ports
	if len(ports) == 0 {
		return 0, fmt.Errorf("service %s/%s: %w: it has no port for an HTTPRoute to send to", r.Namespace, svc.Name, ErrInvalid)
	}
	return gatewayv1.PortNumber(ports[0].Port), nil
}

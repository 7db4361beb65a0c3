package release

import (
	"context"
	"fmt"
	"slices"

	"istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	dracv1 "istio.io/client-go/pkg/applyconfiguration/networking/v1"
	dracv1beta1 "istio.io/client-go/pkg/applyconfiguration/networking/v1beta1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"github.com/shipbot/shipbot/deployer/kube"
)

// Istio API versions of networking.istio.io that shipbot speaks. Istio
// serves v1 since 1.22; older installs, and CRDs installed from older
// charts, serve v1beta1 only. Both carry the same spec.
const (
	IstioV1      = "v1"
	IstioV1beta1 = "v1beta1"
)

// istioAPI reads and writes the VirtualService and DestinationRule of a
// canary in the version of networking.istio.io the cluster serves. Objects
// travel as v1 types whatever the version: the spec is the same message.
type istioAPI interface {
	version() string
	getVS(ctx context.Context, ns, name string) (*networkingv1.VirtualService, error)
	createVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error)
	updateVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error)
	// getDR returns the DestinationRule's spec.
	getDR(ctx context.Context, ns, name string) (*v1alpha3.DestinationRule, error)
	// applyDR server-side applies a DestinationRule shipbot owns.
	applyDR(ctx context.Context, ns, name string, labels map[string]string, spec *v1alpha3.DestinationRule) error
}

// detectIstio asks the cluster's discovery which version serves
// VirtualServices and DestinationRules: v1 when it does, else v1beta1.
func detectIstio(ctx context.Context, d discovery.DiscoveryInterface) (string, error) {
	for _, v := range []string{IstioV1, IstioV1beta1} {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		list, err := d.ServerResourcesForGroupVersion("networking.istio.io/" + v)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("discover networking.istio.io/%s: %w", v, err)
		}
		names := make([]string, len(list.APIResources))
		for i, r := range list.APIResources {
			names[i] = r.Name
		}
		if slices.Contains(names, "virtualservices") && slices.Contains(names, "destinationrules") {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: the cluster serves no networking.istio.io VirtualServices and DestinationRules in v1 or v1beta1; install Istio's CRDs", ErrInvalid)
}

// newIstioAPI is the client for a served version.
func newIstioAPI(c istio.Interface, version string) istioAPI {
	if version == IstioV1beta1 {
		return istioV1beta1{c}
	}
	return istioV1{c}
}

type istioV1 struct{ c istio.Interface }

func (a istioV1) version() string { return IstioV1 }

func (a istioV1) getVS(ctx context.Context, ns, name string) (*networkingv1.VirtualService, error) {
	return a.c.NetworkingV1().VirtualServices(ns).Get(ctx, name, metav1.GetOptions{})
}

func (a istioV1) createVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	return a.c.NetworkingV1().VirtualServices(vs.Namespace).Create(ctx, vs, metav1.CreateOptions{FieldManager: kube.FieldManager})
}

func (a istioV1) updateVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	return a.c.NetworkingV1().VirtualServices(vs.Namespace).Update(ctx, vs, metav1.UpdateOptions{FieldManager: kube.FieldManager})
}

func (a istioV1) getDR(ctx context.Context, ns, name string) (*v1alpha3.DestinationRule, error) {
	dr, err := a.c.NetworkingV1().DestinationRules(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return &dr.Spec, nil
}

func (a istioV1) applyDR(ctx context.Context, ns, name string, labels map[string]string, spec *v1alpha3.DestinationRule) error {
	ac := dracv1.DestinationRule(name, ns).WithLabels(labels)
	ac.Spec = spec
	_, err := a.c.NetworkingV1().DestinationRules(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: kube.FieldManager, Force: true})
	return err
}

type istioV1beta1 struct{ c istio.Interface }

func (a istioV1beta1) version() string { return IstioV1beta1 }

func (a istioV1beta1) getVS(ctx context.Context, ns, name string) (*networkingv1.VirtualService, error) {
	vs, err := a.c.NetworkingV1beta1().VirtualServices(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toV1(vs), nil
}

func (a istioV1beta1) createVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	out, err := a.c.NetworkingV1beta1().VirtualServices(vs.Namespace).Create(ctx, toV1beta1(vs), metav1.CreateOptions{FieldManager: kube.FieldManager})
	if err != nil {
		return nil, err
	}
	return toV1(out), nil
}

func (a istioV1beta1) updateVS(ctx context.Context, vs *networkingv1.VirtualService) (*networkingv1.VirtualService, error) {
	out, err := a.c.NetworkingV1beta1().VirtualServices(vs.Namespace).Update(ctx, toV1beta1(vs), metav1.UpdateOptions{FieldManager: kube.FieldManager})
	if err != nil {
		return nil, err
	}
	return toV1(out), nil
}

func (a istioV1beta1) getDR(ctx context.Context, ns, name string) (*v1alpha3.DestinationRule, error) {
	dr, err := a.c.NetworkingV1beta1().DestinationRules(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return &dr.Spec, nil
}

func (a istioV1beta1) applyDR(ctx context.Context, ns, name string, labels map[string]string, spec *v1alpha3.DestinationRule) error {
	ac := dracv1beta1.DestinationRule(name, ns).WithLabels(labels)
	ac.Spec = spec
	_, err := a.c.NetworkingV1beta1().DestinationRules(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: kube.FieldManager, Force: true})
	return err
}

// toV1 and toV1beta1 move a VirtualService between the versions; only the
// apiVersion differs.
func toV1(in *networkingv1beta1.VirtualService) *networkingv1.VirtualService {
	out := &networkingv1.VirtualService{TypeMeta: in.TypeMeta, ObjectMeta: *in.ObjectMeta.DeepCopy()}
	in.Spec.DeepCopyInto(&out.Spec)
	return out
}

func toV1beta1(in *networkingv1.VirtualService) *networkingv1beta1.VirtualService {
	out := &networkingv1beta1.VirtualService{TypeMeta: in.TypeMeta, ObjectMeta: *in.ObjectMeta.DeepCopy()}
	in.Spec.DeepCopyInto(&out.Spec)
	return out
}

package templates

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// AnnotationWorkload, set to WorkloadPrimary, marks the Deployment that
// shipbot steers (image, replicas, staged releases) when a source renders
// several, and the Service in front of it when several select its pods.
const (
	AnnotationWorkload = "shipbot.io/workload"
	WorkloadPrimary    = "primary"
)

// ErrWorkload marks rendered objects in which shipbot cannot tell which
// Deployment, or which Service, to steer.
var ErrWorkload = errors.New("cannot tell which workload to steer")

// Workload finds the Deployment shipbot steers among objs: the one annotated
// shipbot.io/workload: primary, else the only Deployment.
func Workload(objs []*unstructured.Unstructured) (*unstructured.Unstructured, error) {
	deploys := filter(objs, isDeployment)
	primary := filter(deploys, isPrimary)
	switch {
	case len(primary) == 1:
		return primary[0], nil
	case len(primary) > 1:
		return nil, fmt.Errorf("%w: Deployments %s are all annotated %s: %s; annotate one", ErrWorkload, names(primary), AnnotationWorkload, WorkloadPrimary)
	case len(deploys) == 1:
		return deploys[0], nil
	case len(deploys) == 0:
		return nil, fmt.Errorf("%w: no Deployment among the %d rendered objects", ErrWorkload, len(objs))
	}
	return nil, fmt.Errorf("%w: Deployments %s and none is annotated %s: %s; annotate the one to steer", ErrWorkload, names(deploys), AnnotationWorkload, WorkloadPrimary)
}

// ServiceOf finds the Service in front of workload: the one whose selector
// picks the workload's pods, or, when several do, the one of them annotated
// shipbot.io/workload: primary.
func ServiceOf(objs []*unstructured.Unstructured, workload *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	pods, _, _ := unstructured.NestedStringMap(workload.Object, "spec", "template", "metadata", "labels")
	selects := func(u *unstructured.Unstructured) bool {
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector")
		return isService(u) && len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(pods))
	}
	svcs := filter(objs, selects)
	switch {
	case len(svcs) == 1:
		return svcs[0], nil
	case len(svcs) == 0:
		return nil, fmt.Errorf("%w: no Service selects the pods of Deployment %s (labels %s)", ErrWorkload, workload.GetName(), labels.Set(pods))
	}
	if primary := filter(svcs, isPrimary); len(primary) == 1 {
		return primary[0], nil
	}
	return nil, fmt.Errorf("%w: Services %s all select the pods of Deployment %s; annotate one %s: %s", ErrWorkload, names(svcs), workload.GetName(), AnnotationWorkload, WorkloadPrimary)
}

// AnnotatePodTemplate adds annotations to the pod template of a workload
// kind (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job), so that a pod
// tells where it came from too; other objects are left alone.
func AnnotatePodTemplate(u *unstructured.Unstructured, a map[string]string) {
	switch u.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
	default:
		return
	}
	path := []string{"spec", "template", "metadata", "annotations"}
	cur, _, _ := unstructured.NestedStringMap(u.Object, path...)
	if cur == nil {
		cur = map[string]string{}
	}
	maps.Copy(cur, a)
	_ = unstructured.SetNestedStringMap(u.Object, cur, path...) // fails only on a malformed spec, which the apiserver refuses anyway
}

func filter(objs []*unstructured.Unstructured, keep func(*unstructured.Unstructured) bool) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func isDeployment(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "apps" && gvk.Kind == "Deployment"
}

func isService(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Service"
}

func isPrimary(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()[AnnotationWorkload] == WorkloadPrimary
}

func names(objs []*unstructured.Unstructured) string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = qualifiedName(o)
	}
	return strings.Join(out, ", ")
}

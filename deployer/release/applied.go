package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// AnnotationApplied holds a hash of the object shipbot last applied. A step
// that would apply the same object again skips the request when the cached
// copy carries the hash: a release re-ensures its workloads on every step,
// and most of those applies change nothing. Drift on a field shipbot sets is
// put right by the next apply that changes the object, as Argo Rollouts
// does with its pod-template hash.
const AnnotationApplied = "shipbot.io/applied-hash"

// apply server-side applies objs in order, skipping each one the informer
// shows as applied already.
func (w *workloads) apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, obj := range objs {
		if err := stamp(obj); err != nil {
			return err
		}
		if w.unchanged(ctx, obj) {
			continue
		}
		out, err := w.kube.ApplyOne(ctx, obj)
		if err != nil {
			return err
		}
		if err := w.view.wroteApplied(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// stamp sets AnnotationApplied to the hash of the object without it, and
// without a Deployment's replicas: unchanged compares those on their own,
// and a scale moves them without an apply, so an apply at the size the
// Deployment has now is no change. encoding/json writes map keys sorted,
// so equal objects hash equal.
func stamp(obj *unstructured.Unstructured) error {
	a := obj.GetAnnotations()
	delete(a, AnnotationApplied)
	obj.SetAnnotations(a)
	hashed := obj.Object
	if _, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "replicas"); found && obj.GroupVersionKind() == appsv1.SchemeGroupVersion.WithKind("Deployment") {
		c := obj.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "spec", "replicas")
		hashed = c.Object
	}
	raw, err := json.Marshal(hashed)
	if err != nil {
		return fmt.Errorf("hash %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	sum := sha256.Sum256(raw)
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationApplied] = hex.EncodeToString(sum[:12])
	obj.SetAnnotations(a)
	return nil
}

// unchanged reports whether the informer holds obj as shipbot last applied
// it: same hash and, for a Deployment, the replicas it asks for, since
// scaling changes those without an apply. Without an informer copy it is
// false: a read to save a write saves nothing.
func (w *workloads) unchanged(ctx context.Context, obj *unstructured.Unstructured) bool {
	want := obj.GetAnnotations()[AnnotationApplied]
	switch obj.GroupVersionKind() {
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		live, ok := w.view.sp.of(ctx, kindDeployment).get(obj.GetNamespace(), obj.GetName())
		d, isDeploy := live.(*appsv1.Deployment)
		if !ok || !isDeploy || d.Annotations[AnnotationApplied] != want {
			return false
		}
		replicas, found, err := unstructured.NestedInt64(obj.Object, "spec", "replicas")
		return err == nil && (!found || int64(ptr.Deref(d.Spec.Replicas, 1)) == replicas)
	case corev1.SchemeGroupVersion.WithKind("Service"):
		s := w.view.cachedService(ctx, obj.GetName())
		return s != nil && s.Namespace == obj.GetNamespace() && s.Annotations[AnnotationApplied] == want
	}
	return false
}

package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// Apply server-side applies objects in order, forcing ownership of the
// fields shipbot sets: shipbot is the source of truth for them, and a replay
// of the same objects changes nothing.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		if _, err := c.ApplyOne(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// ApplyOne server-side applies one object, as Apply does, and returns the
// object as the apiserver stored it.
func (c *Client) ApplyOne(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return nil, fmt.Errorf("cluster %s: apply %s %s/%s: %w: %v", c.Name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), ErrInvalid, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: apply %s %s/%s: %w", c.Name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// EnsureNamespace creates a namespace if it does not exist, with the given
// labels. An existing namespace is left as it is: it may belong to someone else.
func (c *Client) EnsureNamespace(ctx context.Context, name string, labels map[string]string) error {
	_, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: get namespace %s: %w", c.Name, name, err)
	}
	ns := corev1ac.Namespace(name).WithLabels(labels)
	_, err = c.Kube.CoreV1().Namespaces().Apply(ctx, ns, metav1.ApplyOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("cluster %s: create namespace %s: %w", c.Name, name, err)
	}
	return nil
}

package kube

import (
	"context"
	"errors"
	"maps"
	"slices"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// NamespaceSpec is a namespace shipbot owns outright, with the guard rails
// that keep one tenant from starving the cluster.
type NamespaceSpec struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Quota       corev1.ResourceList // hard limits of a ResourceQuota named "shipbot"
	Default     corev1.ResourceList // container limits when none are set
	DefaultReq  corev1.ResourceList // container requests when none are set
	Max         corev1.ResourceList // container ceiling
	// Owner are labels a namespace of this name must already carry for
	// shipbot to change or delete it: one that lacks them belongs to
	// someone else, e.g. another project's preview, and is left alone.
	Owner map[string]string
}

// ErrNotOwned marks a namespace that exists without the owner's labels.
var ErrNotOwned = errors.New("namespace is not shipbot's to change")

// checkOwner fails with ErrNotOwned when namespace name exists and lacks a
// label of owner; a namespace that does not exist is anyone's to create.
func (c *Client) checkOwner(ctx context.Context, name string, owner map[string]string) error {
	if len(owner) == 0 {
		return nil
	}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("cluster %s: read namespace %s: %w", c.Name, name, err)
	}
	for _, k := range slices.Sorted(maps.Keys(owner)) {
		if got := ns.Labels[k]; got != owner[k] {
			return fmt.Errorf("cluster %s: namespace %s has %s=%q, not %q: %w", c.Name, name, k, got, owner[k], ErrNotOwned)
		}
	}
	return nil
}

// ApplyNamespace creates or updates an owned namespace with its quota and
// limit range, all by server-side apply so a replay changes nothing.
func (c *Client) ApplyNamespace(ctx context.Context, s NamespaceSpec) error {
	if err := c.checkOwner(ctx, s.Name, s.Owner); err != nil {
		return err
	}
	ns := corev1ac.Namespace(s.Name).WithLabels(s.Labels).WithAnnotations(s.Annotations)
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if _, err := c.Kube.CoreV1().Namespaces().Apply(ctx, ns, opts); err != nil {
		return fmt.Errorf("cluster %s: apply namespace %s: %w", c.Name, s.Name, err)
	}
	if len(s.Quota) > 0 {
		q := corev1ac.ResourceQuota("shipbot", s.Name).WithSpec(corev1ac.ResourceQuotaSpec().WithHard(s.Quota))
		if _, err := c.Kube.CoreV1().ResourceQuotas(s.Name).Apply(ctx, q, opts); err != nil {
			return fmt.Errorf("cluster %s: apply quota in %s: %w", c.Name, s.Name, err)
		}
	}
	item := corev1ac.LimitRangeItem().WithType(corev1.LimitTypeContainer)
	if len(s.Default) > 0 {
		item = item.WithDefault(s.Default)
	}
	if len(s.DefaultReq) > 0 {
		item = item.WithDefaultRequest(s.DefaultReq)
	}
	if len(s.Max) > 0 {
		item = item.WithMax(s.Max)
	}
	lr := corev1ac.LimitRange("shipbot", s.Name).WithSpec(corev1ac.LimitRangeSpec().WithLimits(item))
	if _, err := c.Kube.CoreV1().LimitRanges(s.Name).Apply(ctx, lr, opts); err != nil {
		return fmt.Errorf("cluster %s: apply limit range in %s: %w", c.Name, s.Name, err)
	}
	return nil
}

// DeleteNamespace deletes a namespace that carries the owner labels and
// waits until it is gone, so that "removed" means removed, not
// "terminating". One without them is not deleted: ErrNotOwned.
func (c *Client) DeleteNamespace(ctx context.Context, name string, owner map[string]string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := c.checkOwner(ctx, name, owner); err != nil {
		return err
	}
	policy := metav1.DeletePropagationForeground
	err := c.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: delete namespace %s: %w", c.Name, name, err)
	}
	for {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: namespace %s still terminating after %s", c.Name, name, within)
		case <-time.After(pollEvery):
		}
	}
}

// Namespaces lists namespaces matching a label selector.
func (c *Client) Namespaces(ctx context.Context, selector string) ([]corev1.Namespace, error) {
	l, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list namespaces: %w", c.Name, err)
	}
	return l.Items, nil
}

// ResourceList parses name → quantity pairs, skipping empty values.
func ResourceList(pairs map[corev1.ResourceName]string) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for name, v := range pairs {
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", name, v, err)
		}
		out[name] = q
	}
	return out, nil
}

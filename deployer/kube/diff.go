package kube

import (
	"context"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Change is what applying an object would do to the cluster.
type Change string

// Changes a dry run can find. Stored and shown as strings.
const (
	Created   Change = "created"
	Changed   Change = "changed"
	Unchanged Change = "unchanged"
)

// ObjectDiff is what a server-side apply of one object would change.
type ObjectDiff struct {
	Kind, Namespace, Name string
	Change                Change
	// Diff is a unified diff, in YAML, from the live object to what the
	// apply would leave; empty when unchanged, and always for a Secret,
	// whose values are never shown.
	Diff string
}

// DiffApply asks the apiserver what applying objs would do: each is
// server-side applied with dryRun=All, as Apply would apply it, and the
// result compared with the live object. The apiserver decides, so
// defaulting, admission and other field managers' fields count as they
// would. An object whose namespace does not exist yet is created as it
// renders, since the apiserver can dry-run nothing into that namespace.
// Annotations named in ignore are left out of the comparison: those that
// every deploy changes (who, which pipeline) would make every object look
// changed.
func (c *Client) DiffApply(ctx context.Context, objs []*unstructured.Unstructured, ignore ...string) ([]ObjectDiff, error) {
	out := make([]ObjectDiff, 0, len(objs))
	for _, obj := range objs {
		d, err := c.diffOne(ctx, obj, ignore)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: dry-run %s %s/%s: %w", c.Name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (c *Client) diffOne(ctx context.Context, obj *unstructured.Unstructured, ignore []string) (ObjectDiff, error) {
	d := ObjectDiff{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	ri, err := c.resource(obj)
	if err != nil {
		return d, err
	}
	var live *unstructured.Unstructured
	switch got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{}); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return d, err
	default:
		live = got
	}
	after, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}})
	if apierrors.IsNotFound(err) && live == nil && obj.GetNamespace() != "" {
		after, err = obj, nil // its namespace is not there yet
	}
	if err != nil {
		return d, err
	}
	from, to := "", comparable(after, ignore)
	d.Change = Created
	if live != nil {
		from, d.Change = comparable(live, ignore), Changed
		if from == to {
			d.Change = Unchanged
		}
	}
	if d.Change != Unchanged && d.Kind != "Secret" {
		d.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(from), B: difflib.SplitLines(to), FromFile: "live", ToFile: "after apply", Context: 3,
		})
	}
	return d, err
}

// comparable is an object as YAML without what every write changes
// (resourceVersion, generation, managedFields, timestamps), its status,
// which an apply does not set, and the annotations in ignore.
func comparable(u *unstructured.Unstructured, ignore []string) string {
	o := u.DeepCopy()
	for _, f := range []string{"resourceVersion", "generation", "managedFields", "creationTimestamp", "uid"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	if a := o.GetAnnotations(); len(a) > 0 {
		for _, k := range ignore {
			delete(a, k)
		}
		o.SetAnnotations(a)
		if len(a) == 0 { // SetAnnotations leaves an empty map, which live objects lack
			unstructured.RemoveNestedField(o.Object, "metadata", "annotations")
		}
	}
	unstructured.RemoveNestedField(o.Object, "status")
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return fmt.Sprintf("unprintable: %v", err)
	}
	return string(b)
}

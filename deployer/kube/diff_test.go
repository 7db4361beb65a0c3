package kube_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/test/cluster"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &kc) }

func object(kind, ns, name string, data map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": kind, "metadata": map[string]any{"name": name, "namespace": ns}, "data": data,
	}}
}

// TestDiffApply asks the apiserver what applies would do: created,
// changed with a diff, unchanged, a Secret only as changed, and into a
// namespace that does not exist yet; and it changes nothing itself.
func TestDiffApply(t *testing.T) {
	cluster.Require(t, kc)
	ctx := context.Background()
	c, err := kube.New("local", kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := kc.NewNamespace(t)
	cm := object("ConfigMap", ns, "app", map[string]any{"greeting": "hello"})
	secret := object("Secret", ns, "creds", map[string]any{"token": "c2VjcmV0LTE="})
	diffs, err := c.DiffApply(ctx, []*unstructured.Unstructured{cm, secret})
	if err != nil {
		t.Fatal(err)
	}
	if diffs[0].Change != kube.Created || !strings.Contains(diffs[0].Diff, "+  greeting: hello") {
		t.Errorf("new ConfigMap: %+v, want created with its data in the diff", diffs[0])
	}
	if diffs[1].Change != kube.Created || diffs[1].Diff != "" {
		t.Errorf("new Secret: %+v, want created and no diff", diffs[1])
	}
	if _, err := kc.Client().CoreV1().ConfigMaps(ns).Get(ctx, "app", metav1.GetOptions{}); err == nil {
		t.Fatal("the dry run created the ConfigMap")
	}

	if err := c.Apply(ctx, []*unstructured.Unstructured{cm, secret}); err != nil {
		t.Fatal(err)
	}
	changed := object("ConfigMap", ns, "app", map[string]any{"greeting": "bonjour"})
	rotated := object("Secret", ns, "creds", map[string]any{"token": "c2VjcmV0LTI="})
	diffs, err = c.DiffApply(ctx, []*unstructured.Unstructured{cm, changed, rotated, secret})
	if err != nil {
		t.Fatal(err)
	}
	want := []kube.Change{kube.Unchanged, kube.Changed, kube.Changed, kube.Unchanged}
	for i, d := range diffs {
		if d.Change != want[i] {
			t.Errorf("object %d (%s): %s, want %s", i, d.Kind, d.Change, want[i])
		}
	}
	if d := diffs[1].Diff; !strings.Contains(d, "-  greeting: hello") || !strings.Contains(d, "+  greeting: bonjour") || strings.Contains(d, "resourceVersion") {
		t.Errorf("changed ConfigMap's diff:\n%s", d)
	}
	if diffs[2].Diff != "" || diffs[0].Diff != "" {
		t.Errorf("a Secret's or an unchanged object's diff is shown: %q, %q", diffs[2].Diff, diffs[0].Diff)
	}
	live, err := kc.Client().CoreV1().ConfigMaps(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil || live.Data["greeting"] != "hello" {
		t.Errorf("after the dry run the ConfigMap says %v (%v), want hello", live.Data, err)
	}

	// An annotation in ignore, which every deploy changes, changes nothing.
	stamped := object("ConfigMap", ns, "app", map[string]any{"greeting": "hello"})
	stamped.SetAnnotations(map[string]string{"example.com/deployed-by": "bob"})
	diffs, err = c.DiffApply(ctx, []*unstructured.Unstructured{stamped}, "example.com/deployed-by")
	if err != nil || diffs[0].Change != kube.Unchanged {
		t.Errorf("only an ignored annotation differs: %+v, %v; want unchanged", diffs, err)
	}
	diffs, err = c.DiffApply(ctx, []*unstructured.Unstructured{stamped})
	if err != nil || diffs[0].Change != kube.Changed || !strings.Contains(diffs[0].Diff, "+    example.com/deployed-by: bob") {
		t.Errorf("the same annotation, not ignored: %+v, %v; want changed", diffs, err)
	}

	diffs, err = c.DiffApply(ctx, []*unstructured.Unstructured{object("ConfigMap", "not-there-yet", "app", map[string]any{"a": "b"})})
	if err != nil || diffs[0].Change != kube.Created {
		t.Errorf("into a missing namespace: %+v, %v; want created", diffs, err)
	}
}

package templates

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func deployment(name string, primary bool, podLabels map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": podLabels}}},
	}}
	if primary {
		u.SetAnnotations(map[string]string{AnnotationWorkload: WorkloadPrimary})
	}
	return u
}

func service(name string, primary bool, selector map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"selector": selector},
	}}
	if primary {
		u.SetAnnotations(map[string]string{AnnotationWorkload: WorkloadPrimary})
	}
	return u
}

func configMap(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}}}
}

func TestWorkload(t *testing.T) {
	web := map[string]any{"app": "web"}
	tests := []struct {
		name    string
		objs    []*unstructured.Unstructured
		want    string   // name of the Deployment found
		wantErr []string // or what the error says
	}{
		{"the only Deployment", []*unstructured.Unstructured{configMap("cfg"), deployment("web", false, web)}, "web", nil},
		{"the annotated one of several", []*unstructured.Unstructured{deployment("worker", false, web), deployment("api", true, web)}, "api", nil},
		{"several, none annotated", []*unstructured.Unstructured{deployment("worker", false, web), deployment("api", false, web)}, "",
			[]string{"Deployments worker, api", "none is annotated shipbot.io/workload: primary"}},
		{"several annotated", []*unstructured.Unstructured{deployment("worker", true, web), deployment("api", true, web)}, "",
			[]string{"Deployments worker, api are all annotated"}},
		{"none", []*unstructured.Unstructured{configMap("cfg")}, "", []string{"no Deployment among the 1 rendered objects"}},
		{"a Deployment of another group", []*unstructured.Unstructured{{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": map[string]any{"name": "x"}}}}, "", []string{"no Deployment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Workload(tt.objs)
			if tt.wantErr == nil {
				if err != nil || got.GetName() != tt.want {
					t.Fatalf("Workload = %v, %v; want %s", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrWorkload) {
				t.Fatalf("err = %v, want ErrWorkload", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestServiceOf(t *testing.T) {
	web := deployment("web", false, map[string]any{"app": "web", "tier": "front", "version": "v1"})
	tests := []struct {
		name    string
		objs    []*unstructured.Unstructured
		want    string
		wantErr string
	}{
		{"the one selecting its pods", []*unstructured.Unstructured{
			service("other", false, map[string]any{"app": "other"}), service("web-svc", false, map[string]any{"app": "web", "tier": "front"})}, "web-svc", ""},
		{"several, one annotated", []*unstructured.Unstructured{
			service("web-headless", false, map[string]any{"app": "web"}), service("web", true, map[string]any{"app": "web"})}, "web", ""},
		{"several, none annotated", []*unstructured.Unstructured{
			service("a", false, map[string]any{"app": "web"}), service("b", false, map[string]any{"app": "web"})}, "", "Services a, b all select the pods of Deployment web"},
		{"none selects", []*unstructured.Unstructured{service("web", false, map[string]any{"app": "web", "tier": "back"})}, "", "no Service selects the pods of Deployment web"},
		{"an empty selector selects nothing", []*unstructured.Unstructured{service("web", false, nil)}, "", "no Service selects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ServiceOf(append(tt.objs, web), web)
			if tt.wantErr == "" {
				if err != nil || got.GetName() != tt.want {
					t.Fatalf("ServiceOf = %v, %v; want %s", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrWorkload) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrWorkload saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestAnnotatePodTemplate(t *testing.T) {
	d := deployment("web", false, map[string]any{"app": "web"})
	AnnotatePodTemplate(d, map[string]string{"shipbot.io/sha": "abc"})
	got, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "annotations")
	if got["shipbot.io/sha"] != "abc" {
		t.Errorf("pod template annotations = %v", got)
	}
	cm := configMap("cfg")
	AnnotatePodTemplate(cm, map[string]string{"shipbot.io/sha": "abc"})
	if _, found, _ := unstructured.NestedFieldNoCopy(cm.Object, "spec"); found {
		t.Errorf("a ConfigMap got a pod template: %v", cm.Object)
	}
}

func TestDecoderLocatesErrorsInFiles(t *testing.T) {
	d := &Decoder{Namespace: "apps"}
	objs, err := d.Decode("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n")
	if err != nil || len(objs) != 2 || objs[0].Obj.GetNamespace() != "apps" || objs[1].Obj.GetNamespace() != "" {
		t.Fatalf("Decode = %v, %v; want a ConfigMap in apps and a Namespace", objs, err)
	}
	_, err = d.Decode("b.yaml", "# the same again\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	if err == nil || !strings.Contains(err.Error(), "b.yaml:2: duplicate object ConfigMap apps/a, first rendered from a.yaml") {
		t.Errorf("duplicate: %v", err)
	}
	_, err = d.Decode("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: [\n")
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:") || strings.Contains(err.Error(), "rendered output") {
		t.Errorf("bad YAML: %v; want it at a line of c.yaml", err)
	}
	r := &Decoder{Rendered: true}
	_, err = r.Decode("chart/templates/x.yaml", "apiVersion: v1\nkind: ConfigMap\n")
	if err == nil || !strings.Contains(err.Error(), "chart/templates/x.yaml: line 1 of the rendered output: object has no metadata.name") {
		t.Errorf("rendered: %v", err)
	}
}

package templates

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// customDir is an app's own template dir: a helper, a multi-document file,
// a file that renders nothing and files Load must ignore.
var customDir = fstest.MapFS{
	"deploy/_helpers.tpl": {Data: []byte(`{{ define "name" }}{{ .App }}-{{ .Environment }}{{ end }}`)},
	"deploy/worker.yml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "name" . }}-worker
spec:
  replicas: {{ .Values.workers }}
`)},
	"deploy/rbac.yaml": {Data: []byte(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "name" . }}
---
# A cluster-scoped kind keeps no namespace.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "name" . }}-reader
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
  namespace: kube-public
data:
  labels: |
    {{- toYaml .ObjectLabels | nindent 4 }}
`)},
	"deploy/cron.yaml":        {Data: []byte("{{ if .Values.cron }}\napiVersion: batch/v1\nkind: CronJob\n{{ end }}\n")},
	"deploy/README.md":        {Data: []byte("{{ not a template")},
	"deploy/old/legacy.yaml":  {Data: []byte("{{ nor this")},
	"deploy/values.json":      {Data: []byte("{}")},
	"deploy/zz-empty.yaml":    {Data: []byte("\n# nothing yet\n")},
	"deploy/namespace.yaml":   {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Namespace }}\n")},
	"elsewhere/ignored.yaml":  {Data: []byte("{{ broken")},
	"deploy/sub/nested.yaml":  {Data: []byte("{{ broken")},
	"deploy/.hidden/x.yaml":   {Data: []byte("{{ broken")},
	"deploy/_notes.yaml":      {Data: []byte("{{ define \"unused\" }}x{{ end }}this text is not rendered: {")},
	"deploy/service.yaml.bak": {Data: []byte("{{ broken")},
}

func TestCustomTemplate(t *testing.T) {
	tmpl, err := Load(customDir, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	p := validParams()
	p.Values = map[string]any{"workers": 3, "cron": false}
	objs, err := tmpl.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, fmt.Sprintf("%s %s %s/%s", o.File, o.Obj.GetKind(), o.Obj.GetNamespace(), o.Obj.GetName()))
	}
	want := []string{
		"namespace.yaml Namespace /web-dev",
		"rbac.yaml ServiceAccount web-dev/web-dev",
		"rbac.yaml ClusterRole /web-dev-reader",
		"rbac.yaml ConfigMap kube-public/shared",
		"worker.yml Deployment web-dev/web-dev-worker",
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := objs[4].Obj.Object["spec"].(map[string]any)["replicas"]; n != int64(3) {
		t.Errorf("replicas = %#v, want int64(3) as the apiserver's JSON would give", n)
	}
	if s := objs[3].Obj.Object["data"].(map[string]any)["labels"].(string); !strings.Contains(s, "app.kubernetes.io/managed-by: shipbot") {
		t.Errorf("toYaml | nindent gave %q", s)
	}
}

func TestLoadRejects(t *testing.T) {
	onlyHelpers := fstest.MapFS{"t/_helpers.tpl": {Data: []byte(`{{ define "x" }}{{ end }}`)}}
	if _, err := Load(onlyHelpers, "t"); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("Load of helpers only = %v, want no-templates error", err)
	}
	if _, err := Load(customDir, "missing"); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
	badName := fstest.MapFS{"t/a\nb.yaml": {Data: []byte("x: 1")}}
	if _, err := Load(badName, "t"); err == nil || !strings.Contains(err.Error(), "control characters") {
		t.Errorf("Load of a file named with a newline = %v", err)
	}
}

func TestFuncs(t *testing.T) {
	p := validParams()
	p.Values = map[string]any{"list": []any{"b", "a"}, "empty": ""}
	text := `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .App | upper | lower }}
data:
  sorted: {{ .Values.list | sortAlpha | join "," | quote }}
  yaml: {{ toYaml .Values | quote }}
  default: {{ .Values.empty | default "fallback" }}
  sha: {{ sha256sum "x" | trunc 8 }}
`
	objs, err := renderFiles(t, map[string]string{"a.yaml": text}, p)
	if err != nil {
		t.Fatal(err)
	}
	data := objs[0].Obj.Object["data"].(map[string]any)
	want := map[string]any{"sorted": "a,b", "yaml": "empty: \"\"\nlist:\n- b\n- a", "default": "fallback", "sha": "2d711642"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("data.%s = %q, want %q", k, data[k], v)
		}
	}
	_, err = renderFiles(t, map[string]string{"a.yaml": `x: {{ required "need empty" .Values.empty }}`}, p)
	if err == nil || !strings.Contains(err.Error(), "need empty") {
		t.Errorf("required on an empty string = %v", err)
	}
}

func TestDeniedFuncs(t *testing.T) {
	for _, name := range denied {
		_, err := Load(mapFS(map[string]string{"a.yaml": "x: {{ " + name + " }}"}), "t")
		if err == nil || !strings.Contains(err.Error(), "not defined") {
			t.Errorf("%s: Load = %v, want not defined", name, err)
		}
	}
}

func TestNoNamespace(t *testing.T) {
	p := validParams()
	p.Namespace = ""
	objs, err := renderFiles(t, map[string]string{"a.yaml": okObject}, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, found := objs[0].Obj.Object["metadata"].(map[string]any)["namespace"]; found {
		t.Errorf("namespace set with no Params.Namespace: %v", objs[0].Obj.Object)
	}
}

func TestManifest(t *testing.T) {
	objs, err := renderFiles(t, map[string]string{
		"b.yaml": "kind: ConfigMap\nmetadata:\n  name: b\napiVersion: v1\ndata:\n  z: '1'\n  a: 2\n",
		"a.yaml": okObject,
	}, validParams())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Manifest(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := `---
# Source: a.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: web-dev
---
# Source: b.yaml
apiVersion: v1
data:
  a: 2
  z: "1"
kind: ConfigMap
metadata:
  name: b
  namespace: web-dev
`
	if string(got) != want {
		t.Errorf("Manifest:\n%s\nwant:\n%s", got, want)
	}
	if empty, err := Manifest(nil); err != nil || len(empty) != 0 {
		t.Errorf("Manifest(nil) = %q, %v", empty, err)
	}
	if _, err := Manifest([]Object{{File: "a.yaml"}}); err == nil {
		t.Error("Manifest of a nil object succeeded")
	}
}

// TestConcurrentRender guards the per-Render include binding: with -race it
// fails if renders share state.
func TestConcurrentRender(t *testing.T) {
	tmpl, err := Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	p := validParams()
	p.Host = "web.example.com"
	first, _ := tmpl.Render(p)
	want, _ := Manifest(first)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			objs, err := tmpl.Render(p)
			got, _ := Manifest(objs)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("concurrent render differs: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestSplitDocuments(t *testing.T) {
	out := "--- # first\na: 1\n---\n\n---x: 1\n----\n---\t\nb: 2"
	var got []string
	for _, d := range splitDocuments(out) {
		got = append(got, fmt.Sprintf("%d:%q", d.line, d.text))
	}
	want := []string{`1:""`, `2:"a: 1\n"`, `4:"\n---x: 1\n----\n"`, `8:"b: 2"`}
	if !slices.Equal(got, want) {
		t.Errorf("splitDocuments = %v, want %v", got, want)
	}
}

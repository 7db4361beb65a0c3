package source

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shipbot/shipbot/templates"
)

func input(image string, replicas *int32) Input {
	return Input{
		Files:    os.DirFS("testdata"),
		Params:   templates.Params{App: "web", Project: "shop/web", Environment: "prod", Namespace: "apps", Image: image},
		Replicas: replicas,
	}
}

func ptr(n int32) *int32 { return &n }

// find returns the object of a kind and name, failing the test without it.
func find(t *testing.T, objs []templates.Object, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.Obj.GetKind() == kind && o.Obj.GetName() == name {
			return o.Obj
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.Obj.GetKind()+"/"+o.Obj.GetName())
	}
	t.Fatalf("no %s %s among %v", kind, name, have)
	return nil
}

// images lists a pod template's container images, init containers first.
func images(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, key := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", key)
		for _, c := range cs {
			out = append(out, c.(map[string]any)["image"].(string))
		}
	}
	return out
}

func replicas(u *unstructured.Unstructured) int64 {
	n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	return n
}

func wantError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestHelm(t *testing.T) {
	h := Helm{
		Chart:       "helm/demo",
		ValuesFiles: []string{"helm/values-prod.yaml"},
		Values:      []map[string]any{{"greeting": "from the app", "service": map[string]any{"port": 9000}}, {"service": map[string]any{"port": 9090}}},
	}
	objs, err := h.Render(t.Context(), input("registry.example.com/shop/web:v1.2", ptr(3)))
	if err != nil {
		t.Fatal(err)
	}
	web := find(t, objs, "Deployment", "web-demo")
	if got := images(t, web); !slices.Equal(got, []string{"registry.example.com/shop/web:v1.2"}) || replicas(web) != 3 || web.GetNamespace() != "apps" {
		t.Errorf("web-demo: images %v, replicas %d, namespace %q; want the pipeline's image, 3, apps", got, replicas(web), web.GetNamespace())
	}
	if got := images(t, find(t, objs, "Deployment", "web-demo-worker")); !slices.Equal(got, []string{"registry.example.com/shop/worker:1.0"}) {
		t.Errorf("the worker's image changed: %v", got)
	}
	port, _, _ := unstructured.NestedSlice(find(t, objs, "Service", "web-demo").Object, "spec", "ports")
	if port[0].(map[string]any)["port"] != int64(9090) {
		t.Errorf("service port %v, want 9090: the environment's values win over the app's", port)
	}
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "web-demo").Object, "data")
	if data["greeting"] != "from the app" || data["namespace"] != "apps" || data["hasDeployments"] != "true" {
		t.Errorf("configmap data %v: want values over the values file, the release namespace and the default capabilities", data)
	}
	for _, o := range objs {
		if o.Obj.GetKind() == "Job" {
			t.Errorf("hook %s rendered: shipbot applies no hooks", o.Obj.GetName())
		}
		if !strings.HasPrefix(o.File, "demo/templates/") {
			t.Errorf("%s comes from %q, want its template", o.Obj.GetName(), o.File)
		}
	}
	if w, err := templates.Workload(unwrap(objs)); err != nil || w.GetName() != "web-demo" {
		t.Errorf("workload %v, %v; want the annotated web-demo", w, err)
	}
}

func TestHelmKeepsReplicasUnlessSet(t *testing.T) {
	objs, err := Helm{Chart: "helm/demo"}.Render(t.Context(), input("registry.example.com/shop/web:v1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := replicas(find(t, objs, "Deployment", "web-demo")); n != 1 {
		t.Errorf("replicas %d, want the chart's 1", n)
	}
}

func TestHelmErrors(t *testing.T) {
	in := input("registry.example.com/shop/web:v1", nil)
	_, err := Helm{Chart: "helm/demo", ImageValues: ImageValues{Repository: "img.repo", Tag: "img.tag"}}.Render(t.Context(), in)
	wantError(t, err, "helm chart helm/demo", "no container runs image registry.example.com/shop/web:v1", "img.repo and img.tag")

	wantError(t, Helm{Chart: "helm/missing"}.Check(in.Files), "helm chart helm/missing")
	wantError(t, Helm{Chart: "helm/demo", ValuesFiles: []string{"helm/nope.yaml"}}.Check(in.Files), "values file")

	broken := fstest.MapFS{
		"c/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n")},
		"c/templates/bad.yaml":  {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.missing.key }}\n")},
		"d/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: d\nversion: 0.1.0\ndependencies:\n  - {name: redis, version: 1.0.0, repository: https://charts.example.com}\n")},
		"d/templates/none.yaml": {Data: []byte("")},
	}
	in.Files = broken
	_, err = Helm{Chart: "c"}.Render(t.Context(), in)
	wantError(t, err, "c/templates/bad.yaml:4:")
	wantError(t, Helm{Chart: "d"}.Check(broken), "missing in charts/ directory: redis")
}

func TestKustomize(t *testing.T) {
	k := Kustomize{Path: "kustomize/overlays/prod", ImageName: "demo-api"}
	objs, err := k.Render(t.Context(), input("registry.example.com/shop/api:v2", ptr(4)))
	if err != nil {
		t.Fatal(err)
	}
	api := find(t, objs, "Deployment", "prod-api")
	if got := images(t, api); !slices.Equal(got, []string{"registry.example.com/shop/api:v2"}) || replicas(api) != 4 || api.GetNamespace() != "apps" {
		t.Errorf("prod-api: images %v, replicas %d, namespace %q", got, replicas(api), api.GetNamespace())
	}
	svc := find(t, objs, "Service", "prod-api")
	if sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector"); sel["app.kubernetes.io/name"] != "kust" {
		t.Errorf("service selector %v: the base's labels are lost", sel)
	}
	if !slices.ContainsFunc(objs, func(o templates.Object) bool { return strings.HasPrefix(o.Obj.GetName(), "prod-settings-") }) {
		t.Error("the overlay's generated ConfigMap is missing")
	}
}

func TestKustomizeErrors(t *testing.T) {
	in := input("registry.example.com/shop/api:v2", nil)
	_, err := Kustomize{Path: "kustomize/overlays/prod"}.Render(t.Context(), in)
	wantError(t, err, "kustomize kustomize/overlays/prod", "no container runs image registry.example.com/shop/api:v2", "images name registry.example.com/shop/api")
	_, err = Kustomize{Path: "kustomize/nowhere"}.Render(t.Context(), in)
	wantError(t, err, "kustomize kustomize/nowhere")
	wantError(t, Kustomize{Path: "kustomize"}.Check(in.Files), "no kustomization.yaml")
	if err := (Kustomize{Path: "kustomize/base"}).Check(in.Files); err != nil {
		t.Errorf("Check(base) = %v", err)
	}
}

// openLog is an fs.FS that notes every path opened.
type openLog struct {
	fstest.MapFS
	opened []string
}

func (l *openLog) Open(name string) (fs.File, error) {
	l.opened = append(l.opened, name)
	return l.MapFS.Open(name)
}

func TestKustomizeReadsOnlyWhatItNeeds(t *testing.T) {
	files := &openLog{MapFS: fstest.MapFS{
		"repo/k/kustomization.yaml": {Data: []byte("resources: [cm.yaml, deploy.yaml]\n")},
		"repo/k/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")},
		"repo/k/deploy.yaml":        {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: 'x/app:1'}]\n")},
		"repo/big/blob.bin":         {Data: []byte("never read")},
	}}
	in := input("x/app:2", nil)
	in.Files = files
	objs, err := Kustomize{Path: "repo/k"}.Render(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := images(t, find(t, objs, "Deployment", "d")); !slices.Equal(got, []string{"x/app:2"}) {
		t.Errorf("images %v", got)
	}
	for _, name := range files.opened {
		if strings.HasPrefix(name, "repo/big") {
			t.Errorf("opened %s, which the kustomization does not name", name)
		}
	}
}

func TestManifests(t *testing.T) {
	objs, err := Manifests{Path: "manifests"}.Render(t.Context(), input("registry.example.com/shop/plain:v3", ptr(2)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.File+":"+o.Obj.GetKind()+"/"+o.Obj.GetName())
	}
	if want := []string{"app.yaml:Deployment/plain", "app.yaml:Service/plain", "config/settings.json:ConfigMap/plain-settings"}; !slices.Equal(got, want) {
		t.Errorf("objects %v, want %v (hidden folders and non-manifests left out)", got, want)
	}
	d := find(t, objs, "Deployment", "plain")
	want := []string{"registry.example.com/tools/wait:1", "registry.example.com/shop/plain:v3", "registry.example.com/tools/proxy:2"}
	if got := images(t, d); !slices.Equal(got, want) || replicas(d) != 2 || d.GetNamespace() != "apps" {
		t.Errorf("plain: images %v, replicas %d, namespace %q; want %v, 2, apps", got, replicas(d), d.GetNamespace(), want)
	}
}

func TestManifestsErrors(t *testing.T) {
	in := input("registry.example.com/shop/other:v3", nil)
	_, err := Manifests{Path: "manifests"}.Render(t.Context(), in)
	wantError(t, err, "no container runs image registry.example.com/shop/other:v3", "containers of image registry.example.com/shop/other")
	if _, err := (Manifests{Path: "manifests", ImageName: "registry.example.com/shop/plain"}).Render(t.Context(), in); err != nil {
		t.Errorf("with imageName: %v", err)
	}
	wantError(t, Manifests{Path: "helm/demo/templates/missing"}.Check(in.Files), "helm/demo/templates/missing")
	wantError(t, Manifests{Path: "helm/demo/templates"}.Check(fstest.MapFS{"helm/demo/templates/x.txt": {}}), "no *.yaml")

	in.Files = fstest.MapFS{
		"m/a.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: [oops\n")},
	}
	_, err = Manifests{Path: "m"}.Render(t.Context(), in)
	wantError(t, err, "manifests m: a.yaml:")
	var te *templates.Error
	if !errors.As(err, &te) || te.Line == 0 {
		t.Errorf("error %v is not located at a line", err)
	}

	in.Files = fstest.MapFS{"m/a.yaml": {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n" +
		"      containers: [{name: c, image: 'registry.example.com/shop/other:1'}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e}\n")}}
	in.Replicas = ptr(2)
	_, err = Manifests{Path: "m"}.Render(t.Context(), in)
	wantError(t, err, "set replicas", "Deployments apps/d, apps/e and none is annotated")
}

func TestTemplate(t *testing.T) {
	in := input("registry.example.com/shop/web:v1", ptr(5))
	in.Params.Ports = []templates.Port{{Name: "http", Port: 8080}}
	objs, err := Template{Builtin: "web-service"}.Render(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d := find(t, objs, "Deployment", "web"); replicas(d) != 5 {
		t.Errorf("replicas %d, want 5", replicas(d))
	}
	in.Files = fstest.MapFS{"t/cm.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .App }}-cfg'}\n")}}
	objs, err = Template{Dir: "t"}.Render(t.Context(), in)
	if err != nil || find(t, objs, "ConfigMap", "web-cfg").GetNamespace() != "apps" {
		t.Errorf("Render(dir) = %v, %v", objs, err)
	}
	wantError(t, Template{Dir: "nowhere"}.Check(in.Files), "load templates")
}

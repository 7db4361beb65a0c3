package templates

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenCases are what `shipbot render` prints for typical apps.
var goldenCases = map[string]func(*Params){
	"minimal": func(p *Params) {
		p.Ports = []Port{{Port: 8080}}
		p.Replicas = 1
	},
	"ingress": func(p *Params) {
		p.Host = "web.example.com"
		p.Values = map[string]any{"readinessPath": "/healthz", "ingressClassName": "nginx"}
	},
	"config": func(p *Params) {
		p.Ports = []Port{{Name: "http", Port: 8080}, {Name: "metrics", Port: 9090}, {Name: "dns", Port: 53, Protocol: "UDP"}}
		p.Env = []EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "FEATURE_X", Value: "true"}, {Name: "EMPTY"}}
		p.Config = map[string]string{"DATABASE_HOST": "db.internal", "app.yaml": "listen: :8080\nquote: \"it's\"\n"}
		p.Labels = map[string]string{"team": "payments"}
		p.Annotations = map[string]string{"example.com/owner": "payments@example.com"}
		p.Resources = Resources{Requests: Quantities{CPU: "100m", Memory: "128Mi"}, Limits: Quantities{Memory: "256Mi"}}
	},
}

func renderBuiltin(t *testing.T, p Params) []Object {
	t.Helper()
	tmpl, err := Builtin("web-service")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := tmpl.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestWebServiceGolden(t *testing.T) {
	for name, mutate := range goldenCases {
		t.Run(name, func(t *testing.T) {
			p := validParams()
			mutate(&p)
			got, err := Manifest(renderBuiltin(t, p))
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Manifest(renderBuiltin(t, p))
			if !bytes.Equal(got, again) {
				t.Fatal("two renders of the same Params differ")
			}
			path := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./templates -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the render (run go test ./templates -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// decode converts an object into its typed form, failing on any field the
// type does not know, so a typo in the built-in template cannot pass.
func decode[T any](t *testing.T, objs []Object, kind string) *T {
	t.Helper()
	for _, o := range objs {
		if o.Obj.GetKind() != kind {
			continue
		}
		out := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Obj.Object, out, true); err != nil {
			t.Fatalf("%s from %s: %v", kind, o.File, err)
		}
		return out
	}
	return nil
}

func kinds(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.File+":"+o.Obj.GetKind())
	}
	return out
}

func TestWebServiceDeployment(t *testing.T) {
	p := validParams()
	goldenCases["config"](&p)
	objs := renderBuiltin(t, p)
	d := decode[appsv1.Deployment](t, objs, "Deployment")
	if d == nil {
		t.Fatalf("no Deployment in %v", kinds(objs))
	}
	if d.Name != "web" || d.Namespace != "web-dev" {
		t.Errorf("Deployment is %s/%s, want web-dev/web", d.Namespace, d.Name)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", d.Spec.Selector, err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %s does not match pod labels %v", sel, d.Spec.Template.Labels)
	}
	want := map[string]string{"app": "web", "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web",
		"app.kubernetes.io/managed-by": "shipbot", "team": "payments"}
	for _, got := range []map[string]string{d.Labels, d.Spec.Template.Labels} {
		if !labels.Equals(got, want) {
			t.Errorf("labels = %v, want %v", got, want)
		}
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		*ru.MaxUnavailable != intstr.FromInt32(0) || *ru.MaxSurge != intstr.FromString("25%") {
		t.Errorf("strategy = %+v", d.Spec.Strategy)
	}
	checkContainer(t, d.Spec.Template.Spec.Containers, p)
}

func checkContainer(t *testing.T, cs []corev1.Container, p Params) {
	t.Helper()
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	c := cs[0]
	if c.Name != "web" || c.Image != p.Image {
		t.Errorf("container %s image %s, want web image %s", c.Name, c.Image, p.Image)
	}
	wantPorts := []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
	}
	if !slices.Equal(c.Ports, wantPorts) {
		t.Errorf("ports = %+v, want %+v", c.Ports, wantPorts)
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if got := strings.Join(env, " "); got != "LOG_LEVEL=debug FEATURE_X=true EMPTY=" {
		t.Errorf("env = %s, want Params.Env in order", got)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != "web" {
		t.Errorf("envFrom = %+v, want the web ConfigMap", c.EnvFrom)
	}
	if c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Limits.Memory().String() != "256Mi" ||
		!c.Resources.Limits.Cpu().IsZero() {
		t.Errorf("resources = %+v", c.Resources)
	}
	if c.ReadinessProbe != nil {
		t.Errorf("readiness probe without Values.readinessPath: %+v", c.ReadinessProbe)
	}
}

func TestWebServiceServiceAndIngress(t *testing.T) {
	p := validParams()
	goldenCases["ingress"](&p)
	p.Ports = append(p.Ports, Port{Name: "metrics", Port: 9090})
	objs := renderBuiltin(t, p)
	if got := kinds(objs); !slices.Equal(got, []string{"deployment.yaml:Deployment", "ingress.yaml:Ingress", "service.yaml:Service"}) {
		t.Fatalf("objects = %v", got)
	}
	d := decode[appsv1.Deployment](t, objs, "Deployment")
	svc := decode[corev1.Service](t, objs, "Service")
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("service %+v does not select the pods %v", svc.Spec, d.Spec.Template.Labels)
	}
	wantPorts := []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}
	if !slices.Equal(svc.Spec.Ports, wantPorts) {
		t.Errorf("service ports = %+v, want only the first port %+v", svc.Spec.Ports, wantPorts)
	}
	probe := d.Spec.Template.Spec.Containers[0].ReadinessProbe
	if probe == nil || probe.HTTPGet.Path != "/healthz" || probe.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("readiness probe = %+v", probe)
	}
	ing := decode[networkingv1.Ingress](t, objs, "Ingress")
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.Rules) != 1 {
		t.Fatalf("ingress = %+v", ing.Spec)
	}
	rule := ing.Spec.Rules[0]
	backend := rule.HTTP.Paths[0].Backend.Service
	if rule.Host != "web.example.com" || backend.Name != "web" || backend.Port.Number != 8080 {
		t.Errorf("ingress rule = %+v, backend %+v", rule, backend)
	}
}

func TestWebServiceUnnamedPort(t *testing.T) {
	p := validParams()
	p.Ports = []Port{{Port: 3000}}
	p.Values = map[string]any{"readinessPath": "/ready"}
	objs := renderBuiltin(t, p)
	svc := decode[corev1.Service](t, objs, "Service")
	if got := svc.Spec.Ports[0]; got.Name != "http" || got.TargetPort != intstr.FromInt32(3000) {
		t.Errorf("service port = %+v, want http → 3000", got)
	}
	d := decode[appsv1.Deployment](t, objs, "Deployment")
	if got := d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port; got != intstr.FromInt32(3000) {
		t.Errorf("probe port = %v, want 3000", got)
	}
}

func TestWebServiceConfigRollsPods(t *testing.T) {
	p := validParams()
	p.Config = map[string]string{"A": "1"}
	objs := renderBuiltin(t, p)
	cm := decode[corev1.ConfigMap](t, objs, "ConfigMap")
	if cm == nil || cm.Name != "web" || cm.Data["A"] != "1" {
		t.Fatalf("ConfigMap = %+v", cm)
	}
	before := decode[appsv1.Deployment](t, objs, "Deployment").Spec.Template.Annotations["checksum/config"]
	p.Config["A"] = "2"
	after := decode[appsv1.Deployment](t, renderBuiltin(t, p), "Deployment").Spec.Template.Annotations["checksum/config"]
	if before == "" || before == after {
		t.Errorf("checksum/config %q → %q: a config change must change the pod template", before, after)
	}
}

func TestWebServiceNeedsAPort(t *testing.T) {
	p := validParams()
	p.Ports = nil
	tmpl, _ := Builtin("web-service")
	_, err := tmpl.Render(p)
	if err == nil || !strings.Contains(err.Error(), "deployment.yaml:") || !strings.Contains(err.Error(), "at least one port") {
		t.Errorf("err = %v, want deployment.yaml asking for a port", err)
	}
}

func TestBuiltin(t *testing.T) {
	if names := BuiltinNames(); !slices.Contains(names, "web-service") {
		t.Errorf("BuiltinNames() = %v, want web-service among them", names)
	}
	for _, name := range []string{"nope", "../builtin", ""} {
		if _, err := Builtin(name); err == nil || !strings.Contains(err.Error(), "web-service") {
			t.Errorf("Builtin(%q) err = %v, want one listing web-service", name, err)
		}
	}
}

package release

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/shipbot/shipbot/templates"
)

// ownTemplate is an app whose objects are not named after it: a primary
// Deployment web-server behind Service web-front, next to a worker.
var ownTemplate = fstest.MapFS{
	"t/server.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .App }}-server
  {{- if not (get .Values "ambiguous") }}
  annotations: {shipbot.io/workload: primary}
  {{- end }}
spec:
  replicas: {{ .Replicas }}
  selector: {matchLabels: {app: {{ .App }}, part: server}}
  template:
    metadata: {labels: {app: {{ .App }}, part: server}}
    spec: {containers: [{name: server, image: {{ .Image | quote }}}]}
---
apiVersion: v1
kind: Service
metadata: {name: {{ .App }}-front}
spec:
  selector: {app: {{ .App }}, part: server}
  ports: [{port: 8080}]
`)},
	"t/worker.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .App }}-worker
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .App }}, part: worker}}
  template:
    metadata: {labels: {app: {{ .App }}, part: worker}}
    spec: {containers: [{name: worker, image: registry.local/worker:1}]}
`)},
}

// useTemplate gives the harness an engine that renders every app with the
// template folder t of files.
func (h *harness) useTemplate(files fstest.MapFS) {
	h.t.Helper()
	tpl, err := templates.Load(files, "t")
	if err != nil {
		h.t.Fatal(err)
	}
	if h.e, err = NewStepper(Options{Store: h.st, Clusters: ClusterMap{"local": h.cluster}, Clock: h.clock,
		Renderer: TemplateRenderer{Template: tpl}, Notifier: NotifierFunc(h.notify), Log: testLogger()}); err != nil {
		h.t.Fatal(err)
	}
}

// A release steers the Deployment and Service it finds in the rendered
// objects, whatever their names, and applies the rest as rendered.
func TestReleaseFindsWorkloadAndService(t *testing.T) {
	h := newHarness(t)
	h.useTemplate(ownTemplate)
	h.initial(Rolling, 2)
	r := h.create(h.release(Rolling, "v1-0-0", "v2-0-0", 2))
	r = h.drive(r.ID, phaseIs(Succeeded))
	if r.Workload != "web-server" || r.Service != "web-front" {
		t.Errorf("release found Deployment %q and Service %q, want web-server and web-front", r.Workload, r.Service)
	}
	deps := testCluster.Client().AppsV1().Deployments(h.ns)
	d, err := deps.Get(t.Context(), "web-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.local/web:v2.0.0" || *d.Spec.Replicas != 2 {
		t.Errorf("web-server: image %s, replicas %d; want v2.0.0 and 2", img, *d.Spec.Replicas)
	}
	if w, err := deps.Get(t.Context(), "web-worker", metav1.GetOptions{}); err != nil || w.Spec.Template.Spec.Containers[0].Image != "registry.local/worker:1" {
		t.Errorf("web-worker: %v, %v; want it applied as rendered", w, err)
	}
}

// Blue-green flips the selector of the Service it found.
func TestBlueGreenFlipsTheFoundService(t *testing.T) {
	h := newHarness(t)
	h.useTemplate(ownTemplate)
	h.initial(BlueGreen, 2)
	rel := h.release(BlueGreen, "v1-0-0", "v2-0-0", 2)
	rel.ScaleDownDelay = ptr.To(time.Duration(0)) // the old version goes as the release ends
	r := h.create(rel)
	h.drive(r.ID, phaseIs(Succeeded))
	svc, err := testCluster.Client().CoreV1().Services(h.ns).Get(t.Context(), "web-front", metav1.GetOptions{})
	if err != nil || svc.Spec.Selector[LabelVersion] != "v2-0-0" {
		t.Errorf("web-front selects %v (%v), want version v2-0-0", svc.Spec.Selector, err)
	}
	if n := h.replicas("web-v1-0-0"); n != 0 {
		t.Errorf("web-v1-0-0 has %d replicas after the release, want 0", n)
	}
}

// A render with several Deployments and none marked primary fails the
// release, naming them.
func TestReleaseRefusesAmbiguousWorkload(t *testing.T) {
	h := newHarness(t)
	h.useTemplate(ownTemplate)
	rel := h.release(Rolling, "", "v1-0-0", 1)
	rel.Params.Values = map[string]any{"ambiguous": true}
	r := h.create(rel)
	r = h.drive(r.ID, phaseIs(Failed))
	if !strings.Contains(r.Reason, "Deployments") || !strings.Contains(r.Reason, "web-server") || !strings.Contains(r.Reason, "web-worker") {
		t.Errorf("reason %q, want it to name the Deployments", r.Reason)
	}
}

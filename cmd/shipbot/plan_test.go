package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/cluster"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &kc) }

// checkout writes a repository checkout whose manifests say greeting.
func checkout(t *testing.T, greeting string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"deploy/k8s/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example.com/shop/web:old}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {greeting: ` + greeting + `}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: do-not-print-me}
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPlan: shipbot plan renders the checkout and asks the cluster what
// applying it would do: the live ConfigMap's change as a diff, the new
// Deployment and Secret as created, the Secret's value nowhere; and the
// cluster is left as it was.
func TestPlan(t *testing.T) {
	cluster.Require(t, kc)
	ctx := context.Background()
	ns := kc.NewNamespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Data: map[string]string{"greeting": "hello"}}
	if _, err := kc.Client().CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "shipbot.yaml")
	text := fmt.Sprintf(`gitlab: {baseURL: https://gitlab.example.com, token: x, webhookSecret: y}
clusters: [{name: local, kubeconfig: %s}]
environments: [{name: dev, clusters: [local], namespace: %s, refs: {branches: ['^dev$']}}]
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    source: {from: repo, manifests: {path: deploy/k8s}}
    environments: {dev: {}}
`, kc.KubeconfigPath(), ns)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "plan", "-c", cfg, "--app", "web", "--env", "dev", "--repo-dir", checkout(t, "bonjour"), "--ref", "dev", "--sha", strings.Repeat("a", 40))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"**web** in **dev** (cluster local): 2 created, 1 changed, 0 unchanged",
		"ConfigMap " + ns + "/web changed", "-  greeting: hello", "+  greeting: bonjour",
		"Deployment " + ns + "/web created", "image: registry.example.com/shop/web:aaaaaaaa",
		"- Secret " + ns + "/creds created\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "do-not-print-me") || strings.Contains(out, "ZG8tbm90") {
		t.Errorf("plan shows the Secret's value:\n%s", out)
	}
	got, err := kc.Client().CoreV1().ConfigMaps(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || got.Data["greeting"] != "hello" {
		t.Errorf("after plan the ConfigMap says %v (%v), want it untouched", got.Data, err)
	}
	if _, err := kc.Client().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		t.Error("plan created the Deployment")
	}

	_, err = run(t, "plan", "-c", cfg, "--app", "web", "--env", "dev")
	if err == nil || !strings.Contains(err.Error(), "--repo-dir") {
		t.Errorf("plan of a repo source without --repo-dir: %v, want it to ask for --repo-dir", err)
	}
}

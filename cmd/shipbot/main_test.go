package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func TestRenderPrintsStampedManifests(t *testing.T) {
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "y")
	out, err := run(t, "render", "-c", "../../docs/examples/shipbot.yaml", "--app", "web", "--env", "prod1", "--ref", "v1.4.0", "--sha", strings.Repeat("c", 40))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out, "\n---\n")
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(d, "---\n")), &m); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, d)
		}
		if k, ok := m["kind"].(string); ok {
			kinds[k] = m
		}
	}
	for _, k := range []string{"Deployment", "Service", "Ingress"} {
		if kinds[k] == nil {
			t.Errorf("no %s in output:\n%s", k, out)
		}
	}
	dep := kinds["Deployment"]
	if !strings.Contains(out, "image: registry.example.com/shop/web:cccccccc") {
		t.Errorf("image not rendered from the sha:\n%s", out)
	}
	if spec := dep["spec"].(map[string]any); spec["replicas"] != float64(6) {
		t.Errorf("prod1 replicas = %v, want 6", spec["replicas"])
	}
	if !strings.Contains(out, "shipbot.io/environment: prod1") || !strings.Contains(out, "# Source: deployment.yaml") {
		t.Errorf("missing annotations or source comments:\n%s", out)
	}
}

func TestCheckReportsFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("listen: :8080\ngitlab:\n  baseURL: https://g.example.com\n  webhookSecret: s\n  tokne: x\n"), 0o600)
	_, err := run(t, "check", "-c", path)
	if err == nil || !strings.Contains(err.Error(), path+":5:") || !strings.Contains(err.Error(), `unknown key "tokne"`) {
		t.Fatalf("check error = %v, want %s:5 and the unknown key", err, path)
	}
}

// check loads every cluster's kubeconfig: a missing file is reported with
// the cluster's place in the config, not left to start.
func TestCheckReportsAMissingKubeconfig(t *testing.T) {
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "y")
	_, err := run(t, "check", "-c", "../../docs/examples/shipbot.yaml")
	if err == nil || !strings.Contains(err.Error(), "clusters[0]") || !strings.Contains(err.Error(), "/etc/shipbot/kubeconfig") {
		t.Fatalf("check of a config whose kubeconfig is absent: %v, want clusters[0] and the path", err)
	}
}

func TestRenderUnknownApp(t *testing.T) {
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "y")
	_, err := run(t, "render", "-c", "../../docs/examples/shipbot.yaml", "--app", "nope", "--env", "dev")
	if err == nil || !strings.Contains(err.Error(), `no app "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// A reloaded file applies to the next webhook without a restart: a branch
// rule added to dev deploys that branch, with the app's params as the new
// file sets them; a broken file in between changes nothing.
func TestReloadAppliesToNextWebhook(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "shipbot.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(e.yaml())
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := start(t, cfg)

	write("environments: [")
	if err := m.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	next := strings.Replace(e.yaml(), "branches: ['^dev$']", "branches: ['^(dev|staging)$']", 1)
	next = strings.Replace(next, "replicas: 3", "replicas: 2", 1)
	if next == e.yaml() {
		t.Fatal("the test's edit of the config changed nothing")
	}
	write(next)
	if err := m.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}

	body := fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: 42, Project: "shop/web", Ref: "staging", SHA: sha('e'), PipelineID: 7001, Username: "alice"})
	if code := post(t, m, "Pipeline Hook", body); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	got := waitDone(t, m.Store(), 1, 60*time.Second)
	if d := got[0]; len(got) != 1 || d.Status != store.StatusSucceeded || d.Environment != "dev" || d.Ref != "staging" {
		t.Fatalf("deployments %+v, want staging's, succeeded in dev", got)
	}
	dep, err := kc.Client().AppsV1().Deployments(e.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := *dep.Spec.Replicas; n != 2 {
		t.Errorf("web has %d replicas, want the reloaded 2", n)
	}
}

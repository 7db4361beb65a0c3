package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
	"github.com/shipbot/shipbot/test/fixtures"
)

// With webhook.inbox in the cluster, an intake replica acknowledges a
// pipeline while the engine is down; the engine, once up, deploys it once,
// and a redelivery after that deploys nothing.
func TestIntakeReplicaKeepsWebhooksWhileTheEngineIsDown(t *testing.T) {
	e := newEnv(t)
	inboxNS := kc.NewNamespace(t)
	text := strings.Replace(e.yaml(), "store:\n", "webhook:\n  inbox: {cluster: local, namespace: "+inboxNS+"}\nstore:\n", 1)
	cfg, err := config.Parse("e2e.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}

	in := &serve.Intake{Config: cfg, Log: testLogger(t)}
	if err := in.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	resp, err := http.Get("http://" + in.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the intake replica's /readyz answered %d, want 200", resp.StatusCode)
	}
	body := devPipeline(t, sha('c'), 3003)
	for i := range 2 {
		if code := fixtures.PostWebhook(t, in.Addr(), secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "p-3003"); code != http.StatusOK {
			t.Fatalf("delivery %d to the intake replica answered %d", i, code)
		}
	}
	if code := fixtures.PostWebhook(t, in.Addr(), "wrong", "Pipeline Hook", body, "X-Gitlab-Event-UUID", "p-forged"); code != http.StatusUnauthorized {
		t.Errorf("a delivery with the wrong token answered %d, want 401", code)
	}
	dyn, err := dynamic.NewForConfig(kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	deliveries := dyn.Resource(kubestore.Deliveries).Namespace(inboxNS)
	list, err := deliveries.List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].GetName() != kubestore.ObjectName("uuid:p-3003") {
		t.Fatalf("%d Delivery objects in the cluster, want the one for p-3003", len(list.Items))
	}

	m := start(t, cfg)
	got := waitDone(t, m.Store(), 1, 60*time.Second)
	if len(got) != 1 || got[0].Status != store.StatusSucceeded || got[0].PipelineID != 3003 {
		t.Fatalf("deployments %+v, want pipeline 3003 deployed", got)
	}
	waitFor(10*time.Second, func() bool {
		l, err := deliveries.List(t.Context(), metav1.ListOptions{})
		return err == nil && len(l.Items) == 0
	})
	if l, _ := deliveries.List(t.Context(), metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d Delivery objects left after the engine took them", len(l.Items))
	}

	// GitLab redelivers to another replica, or to the engine itself.
	if code := fixtures.PostWebhook(t, in.Addr(), secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "p-3003"); code != http.StatusOK {
		t.Fatalf("redelivery answered %d", code)
	}
	if code := post(t, m, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "p-3003"); code != http.StatusOK {
		t.Fatalf("redelivery to the engine answered %d", code)
	}
	waitFor(10*time.Second, func() bool {
		l, err := deliveries.List(t.Context(), metav1.ListOptions{})
		return err == nil && len(l.Items) == 0
	})
	time.Sleep(500 * time.Millisecond) // time for a wrong second deploy to be queued
	if all, _ := m.Store().Deployments(nil); len(all) != 1 {
		t.Errorf("%d deployments after the redelivery, want still 1", len(all))
	}
}

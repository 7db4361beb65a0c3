package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/leader"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

const apiToken = "e2e-api-token-0123456789abcdef0123456789"

func apiGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fastLease keeps the failover tests to seconds; the defaults' failover
// time is measured by make bench.
var fastLease = leader.Config{LeaseDuration: 2 * time.Second, RenewDeadline: 1200 * time.Millisecond, RetryPeriod: 300 * time.Millisecond}

// replica starts one HA replica of the config text with its own store file.
func replica(t *testing.T, text string, keepLease bool) *serve.HA {
	t.Helper()
	text = strings.Replace(text, "store:\n  path: ", "store:\n  backend: kubernetes\n  path: "+filepath.Join(t.TempDir(), "x")+"-", 1)
	cfg, err := config.Parse("e2e.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	lease := fastLease
	lease.KeepLeaseOnStop = keepLease
	h := &serve.HA{Config: cfg, Log: testLogger(t), Lease: lease}
	if err := h.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func waitLeader(t *testing.T, h *serve.HA, within time.Duration) *serve.Main {
	t.Helper()
	var m *serve.Main
	if err := waitFor(within, func() bool { m = h.Leader(); return m != nil }); err != nil {
		t.Fatalf("replica at %s did not lead within %s", h.Addr(), within)
	}
	return m
}

// Two replicas with store.backend kubernetes: a follower acknowledges a
// pipeline and the leader deploys it; the leader dies (its lease left
// held); the other takes over with the store rebuilt from the cluster,
// the first deploy on record and not repeated, and deploys the next.
func TestAReplicaTakesOverWhenTheLeaderDies(t *testing.T) {
	e := newEnv(t)
	inboxNS := kc.NewNamespace(t)
	text := strings.Replace(e.yaml(), "store:\n", "webhook:\n  inbox: {cluster: local, namespace: "+inboxNS+"}\napi:\n  token: "+apiToken+"\nstore:\n", 1)

	a := replica(t, text, true)
	defer a.Close()
	waitLeader(t, a, 20*time.Second)
	b := replica(t, text, false)
	defer b.Close()
	if b.Leader() != nil {
		t.Fatal("two replicas lead")
	}

	if code := fixtures.PostWebhook(t, b.Addr(), secret, "Pipeline Hook", devPipeline(t, sha('d'), 4004), "X-Gitlab-Event-UUID", "p-4004"); code != http.StatusOK {
		t.Fatalf("the follower answered %d", code)
	}
	first := waitDone(t, a.Leader().Store(), 1, 60*time.Second)
	if first[0].Status != store.StatusSucceeded {
		t.Fatalf("deployment %+v", first[0])
	}
	// The follower forwards the API to the leader.
	if code, body := apiGet(t, b.Addr(), "/api/v1/deployments"); code != http.StatusOK || !strings.Contains(body, `"pipelineId":4004`) {
		t.Errorf("GET /api/v1/deployments at the follower: %d %s, want the leader's record of pipeline 4004", code, body)
	}

	died := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	m := waitLeader(t, b, 30*time.Second)
	t.Logf("replica b led %s after a died (lease %s)", time.Since(died).Round(time.Millisecond), fastLease.LeaseDuration)
	got, err := m.Store().Deployments(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != first[0].ID || got[0].Status != store.StatusSucceeded || got[0].PipelineID != 4004 {
		t.Fatalf("the new leader's store holds %+v, want a's deployment of pipeline 4004", got)
	}

	if code := fixtures.PostWebhook(t, b.Addr(), secret, "Pipeline Hook", devPipeline(t, sha('e'), 4005), "X-Gitlab-Event-UUID", "p-4005"); code != http.StatusOK {
		t.Fatalf("the new leader answered %d", code)
	}
	all := waitDone(t, m.Store(), 2, 60*time.Second)
	if len(all) != 2 || all[1].PipelineID != 4005 || all[1].Status != store.StatusSucceeded {
		t.Fatalf("deployments %+v, want pipeline 4004 once and 4005 deployed", all)
	}
}

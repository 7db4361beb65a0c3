package ha

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/e2e/proc"
	"github.com/shipbot/shipbot/test/fixtures"
)

// outage is how long the kube-apiserver stays stopped (issue 12).
const outage = 20 * time.Second

// leaderGauge reads shipbot_leader from addr's /metrics.
func leaderGauge(addr string) (int, error) {
	v, err := metric(addr, "shipbot_leader", nil)
	return int(v), err
}

// metric reads, from addr's /metrics, the gauge or counter name: its one
// series whose labels include want.
func metric(addr, name string, want map[string]string) (float64, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s/metrics: %w", addr, err)
	}
	var found []float64
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			found = append(found, m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%s/metrics has %d series of %s with %v, want 1", addr, len(found), name, want)
	}
	return found[0], nil
}

// leaders sums shipbot_leader over the live replicas, and says which lead.
func leaders(set *proc.Replicas) (int, []string, error) {
	sum, who := 0, []string(nil)
	for addr := range set.Procs {
		v, err := leaderGauge(addr)
		if err != nil {
			return 0, nil, err
		}
		if v == 1 {
			who = append(who, addr)
		}
		sum += v
	}
	return sum, who, nil
}

// waitLeaders waits for the replicas' shipbot_leader to sum to n.
func waitLeaders(t *testing.T, set *proc.Replicas, n int, within time.Duration, what string) {
	t.Helper()
	fixtures.Eventually(t, within, what, func() error {
		sum, who, err := leaders(set)
		if err == nil && sum != n {
			err = fmt.Errorf("%d replicas lead: %v", sum, who)
		}
		return err
	})
}

// tryOnce posts dev's pipeline i to addr once, and returns the status and
// the Retry-After header.
func tryOnce(ctx context.Context, addr string, i int) (int, string, error) {
	body, uuid, err := pipeline(i)
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := fixtures.Send(ctx, addr, secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", uuid)
	return r.Code, r.Header.Get("Retry-After"), err
}

// The kube-apiserver stops for 20 s under three replicas, just after a
// pipeline was acknowledged. Within the lease's renew deadline no replica
// leads (shipbot_leader sums to 0 over their /metrics) and none leads again
// until the apiserver is back; every replica's intake answers 503 with a
// Retry-After, so GitLab retries. Afterwards one replica leads, the
// pipeline acknowledged before the outage and the one retried through it
// are both deployed, and each of the three pipelines has exactly one
// record.
func TestAPIServerOutageStopsEveryReplicaAndLosesNothing(t *testing.T) {
	set := startReplicas(t, 3)
	lead := set.Leader("")
	s := newSender(set)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cl := &api.Client{Server: "http://" + lead, Token: apiToken}
	if err := s.deliver(ctx, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	fixtures.Eventually(t, time.Minute, "pipeline 1 deployed", func() error {
		got, active, err := deploymentsByPipeline(ctx, cl)
		if err == nil && (got[1] != 1 || active != 0) {
			err = fmt.Errorf("records %v, %d active", got, active)
		}
		return err
	})
	waitLeaders(t, set, 1, 10*time.Second, "one replica leads")
	if err := s.deliver(ctx, 2, time.Second); err != nil {
		t.Fatal(err)
	}

	if err := kc.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := kc.RestartAPIServer(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	// The default lease: renew deadline 5 s, retry 1 s.
	waitLeaders(t, set, 0, 15*time.Second, "no replica leads once the apiserver is gone")
	t.Logf("no replica leads %s after the apiserver stopped", time.Since(stopped).Round(time.Millisecond))
	for addr := range set.Procs {
		code, retry, err := tryOnce(ctx, addr, 3)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("during the outage %s answered pipeline 3 with %d, Retry-After %q; want 503 with a Retry-After", addr, code, retry)
		}
	}
	left := outage - time.Since(stopped)
	if left < 5*time.Second {
		t.Fatalf("the checks above took %s of the %s outage; too little is left to watch that nobody leads", time.Since(stopped).Round(time.Second), outage)
	}
	holds(t, left, "during the outage", func() error {
		sum, who, err := leaders(set)
		if err == nil && sum != 0 {
			err = fmt.Errorf("%v lead without the apiserver", who)
		}
		return err
	})

	if err := kc.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Logf("apiserver back after %s", time.Since(stopped).Round(time.Second))
	if err := s.deliver(ctx, 3, time.Second); err != nil { // GitLab's retry
		t.Fatal(err)
	}
	waitLeaders(t, set, 1, 30*time.Second, "one replica leads again")
	_, who, err := leaders(set)
	if err != nil {
		t.Fatal(err)
	}
	cl.Server = "http://" + who[0]
	var last store.Status
	fixtures.Eventually(t, 2*time.Minute, "the three pipelines deployed", func() error {
		got, active, err := deploymentsByPipeline(ctx, cl)
		if err != nil {
			return err
		}
		if len(got) < 3 || active > 0 {
			return fmt.Errorf("records %v, %d active", got, active)
		}
		if wrong := exactlyOnce(got, 3); len(wrong) > 0 {
			t.Fatalf("not exactly once: %v", wrong)
		}
		p, err := cl.Deployments(ctx, api.RecordQuery{Environment: "dev", Limit: 1})
		if err != nil {
			return err
		}
		if last = p.Items[0].Status; p.Items[0].PipelineID != 3 {
			return fmt.Errorf("the newest record is pipeline %d's", p.Items[0].PipelineID)
		}
		return nil
	})
	if last != store.StatusSucceeded {
		t.Errorf("pipeline 3, retried through the outage, ended %s, want succeeded", last)
	}
}

package releases

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/e2e/proc"
	"github.com/shipbot/shipbot/test/fixtures"
)

// startReplicas starts n replicas of config, a text that r.config wrote or
// one of the same shape, with their webhook inbox on the config's cluster
// entry named cluster.
func (r *rig) startReplicas(config, cluster string, n int) *proc.Replicas {
	r.t.Helper()
	return proc.StartReplicas(r.t, shipbotBinary(r.t), kc.Client(), config, r.path, cluster, kc.NewNamespace(r.t), n)
}

// Three replicas with the store in the apiserver; the leader is killed
// (kill -9) between two stages of a canary and again while its step waits
// for a gate. Each time another replica takes over with the release as the
// store held it, and the release ends as an uninterrupted one would, with
// every stage in its history once and no gate evaluation lost or doubled.
func TestLeaderKilledMidCanaryAnotherReplicaFinishes(t *testing.T) {
	r := newRig(t, "prod1")
	g := newGate(t)
	g.gen.Store(1)
	set := r.startReplicas(r.config(fmt.Sprintf(gatedCanary, g.url())), "prod1-cluster", 3)
	lead := set.Leader("")
	via := set.Other(lead) // webhooks and API calls go to a follower, which forwards
	cl := &api.Client{Server: "http://" + via, Token: apiToken}
	rs := apiReleases{cl}

	tag(t, via, "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	r.waitWeights("prod1", map[string]int32{"": 100})
	tag(t, via, "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	paused := get(t, cl, rel.ID)

	// Between stages.
	g.gen.Store(0)
	killed := time.Now()
	set.Kill(lead)
	g.gen.Store(2)
	lead = set.Leader(lead)
	cl.Server = "http://" + set.Other(lead)
	fixtures.Eventually(t, 60*time.Second, "the new leader answers", func() error {
		_, err := cl.Get(context.Background(), rel.ID)
		return err
	})
	t.Logf("failover between stages: the next leader answered %s after the kill", time.Since(killed).Round(time.Millisecond))
	holds(t, time.Second, "after the leader was killed between stages", func() error {
		got := get(t, cl, rel.ID)
		if got.Phase != release.Paused || got.Stage != 1 || got.Percent != 10 {
			return fmt.Errorf("%s stage %d at %d %%, want Paused at stage 1 (index) at 10 %%", got.Phase, got.Stage, got.Percent)
		}
		return sameHistory(paused.History, got.History)
	})
	r.wantWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	proc.CLI(t, shipbotBinary(t), "releases", "continue", rel.ID, "--server", cl.Server, "--token", apiToken, "--as", "alice", "--comment", "after a failover")

	// Inside stage 2, while the leader's step waits for the gate.
	inGate := func(r release.Release) bool { return r.Phase == release.Verifying && r.Stage == 1 }
	waitRelease(t, rs, "prod1", "v1-1-0", "waiting for stage 2's gate", inGate)
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	fixtures.Eventually(t, 30*time.Second, "the second leader asks the gate", func() error { return g.asked(2, 1) })
	held := g.holdNext()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the second leader did not ask the gate again within 20s")
	}
	waiting := get(t, cl, rel.ID)
	g.gen.Store(0)
	killed = time.Now()
	set.Kill(lead)
	g.gen.Store(3)
	lead = set.Leader(lead)
	cl.Server = "http://" + lead // the last one left
	before := smokeCheck(t, waiting)
	fixtures.Eventually(t, 60*time.Second, "the third leader carries on with the gate", func() error {
		if err := g.asked(3, 1); err != nil {
			return err
		}
		c := smokeCheck(t, get(t, cl, rel.ID))
		if c.Runs <= before.Runs {
			return fmt.Errorf("gate check has %d runs, had %d before the kill", c.Runs, before.Runs)
		}
		if !c.Started.Equal(before.Started) {
			t.Fatalf("gate check started again at %s; it had started at %s", c.Started, before.Started)
		}
		return nil
	})
	t.Logf("failover inside the gate: the next leader's first step (its gate call) came %s after the kill", g.firstCall(3).Sub(killed).Round(time.Millisecond))
	if err := sameHistory(waiting.History, get(t, cl, rel.ID).History); err != nil {
		t.Errorf("after the leader was killed inside stage 2: %v", err)
	}

	g.pass()
	waitRelease(t, rs, "prod1", "v1-1-0", "succeeded", phaseIs(release.Succeeded))
	r.waitWeights("prod1", map[string]int32{"": 100})
	final := get(t, cl, rel.ID)
	wantEachStageOnce(t, final.History)
	g.wantCalls(t, rel.ID, smokeCheck(t, final).Runs)
}

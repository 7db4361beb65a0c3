package releases

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fixtures"
)

// replicaSet is three `shipbot serve` processes with store.backend
// kubernetes, each on its own address and working copy.
type replicaSet struct {
	t       *testing.T
	inboxNS string
	procs   map[string]*server // by address
}

func (r *rig) startReplicas(spec string, n int) *replicaSet {
	r.t.Helper()
	bin := shipbotBinary(r.t)
	rs := &replicaSet{t: r.t, inboxNS: kc.NewNamespace(r.t), procs: map[string]*server{}}
	for i := range n {
		addr := freeAddr(r.t)
		text := r.config(spec)
		text = strings.Replace(text, "listen: 127.0.0.1:0\n", "listen: "+addr+"\n", 1)
		text = strings.Replace(text, "store: {path: "+r.path+"}",
			fmt.Sprintf("store: {backend: kubernetes, path: %s-%d}\nwebhook: {maxBodyBytes: 786432, inbox: {cluster: prod1-cluster, namespace: %s}}", r.path, i, rs.inboxNS), 1)
		path := filepath.Join(r.t.TempDir(), fmt.Sprintf("shipbot-%d.yaml", i))
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			r.t.Fatal(err)
		}
		rs.procs[addr] = startProcess(r.t, bin, path, addr, fmt.Sprintf("replica-%d", i))
	}
	return rs
}

// leader waits for a live replica other than not to hold the Lease, and
// returns its address.
func (rs *replicaSet) leader(not string) string {
	rs.t.Helper()
	var addr string
	fixtures.Eventually(rs.t, 60*time.Second, "a replica leads", func() error {
		l, err := kc.Client().CoordinationV1().Leases(rs.inboxNS).Get(context.Background(), serve.LeaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil {
			return fmt.Errorf("no holder")
		}
		_, addr, _ = strings.Cut(*l.Spec.HolderIdentity, "@")
		if _, live := rs.procs[addr]; !live || addr == not {
			return fmt.Errorf("lease held by %q", *l.Spec.HolderIdentity)
		}
		return nil
	})
	return addr
}

// other is a live replica's address that is not addr.
func (rs *replicaSet) other(addr string) string {
	for a := range rs.procs {
		if a != addr {
			return a
		}
	}
	rs.t.Fatal("no other replica")
	return ""
}

func (rs *replicaSet) kill(addr string) {
	rs.t.Helper()
	rs.procs[addr].kill9()
	delete(rs.procs, addr)
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
	set := r.startReplicas(fmt.Sprintf(gatedCanary, g.url()), 3)
	lead := set.leader("")
	via := set.other(lead) // webhooks and API calls go to a follower, which forwards
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
	set.kill(lead)
	g.gen.Store(2)
	lead = set.leader(lead)
	cl.Server = "http://" + set.other(lead)
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
	cli(t, shipbotBinary(t), "releases", "continue", rel.ID, "--server", cl.Server, "--token", apiToken, "--as", "alice", "--comment", "after a failover")

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
	set.kill(lead)
	g.gen.Store(3)
	lead = set.leader(lead)
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

package releases

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
)

// A release keeps the stages it was created with when a reload changes
// the app's spec; the next tag's release has the new ones.
func TestReloadLeavesRunningReleaseOnItsSteps(t *testing.T) {
	r := newRig(t, "prod1")
	path := filepath.Join(t.TempDir(), "shipbot.yaml")
	if err := os.WriteFile(path, []byte(r.config(canary)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := r.run(cfg)
	rs := m.Releases()
	tag(t, m.Addr(), "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", drained)
	tag(t, m.Addr(), "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})

	// The file now says 20 then 100, pausing after 20.
	if err := os.WriteFile(path, []byte(r.config("strategy: canary\nsteps: [20, 100]\npauseAfter: [20]\nscaleDownDelay: 1s")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := rs.Record(context.Background(), rel.ID, intent(release.IntentContinue, 0)); err != nil {
		t.Fatal(err)
	}
	// Its own next stage, 50 %, where it pauses: not the new file's 100 %.
	waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 2 of its own steps", pausedAt(2))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	if _, err := rs.Record(context.Background(), rel.ID, intent(release.IntentContinue, 0)); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, rs, "prod1", "v1-1-0", "succeeded", drained)

	tag(t, m.Addr(), "v1.2.0", '3', 102)
	next := waitRelease(t, rs, "prod1", "v1-2-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-1-0": 80, "v1-2-0": 20})
	var steps []int
	for _, s := range next.Stages {
		steps = append(steps, s.Target)
	}
	if !slices.Equal(steps, []int{20, 100}) {
		t.Errorf("the release after the reload has steps %v, want the file's [20 100]", steps)
	}
}

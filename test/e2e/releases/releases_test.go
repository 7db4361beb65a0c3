package releases

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

// canary scales the old version down 1s after traffic moved (30s by
// default), so that the tests see that happen without waiting long.
const canary = `strategy: canary
steps: [10, 50, 100]
pauseAfter: [10, 50]
scaleDownDelay: 1s`

func intent(kind release.IntentKind, pct int) release.Intent {
	return release.Intent{Kind: kind, Percent: pct, Actor: "alice", Surface: release.SurfaceAPI}
}

// A tag goes to prod1 through the canary stages, with a person continuing
// at each pause; prod2 waits for prod1 to succeed, then starts its own.
func TestTagReleasesProd1ThenProd2(t *testing.T) {
	r := newRig(t, "prod1", "prod2")
	m := r.start(r.config(canary))
	rs := m.Releases()

	// The first tag has nothing to shift traffic from: straight to 100 %,
	// prod1 first, then prod2.
	tag(t, m.Addr(), "v1.0.0", '1', 100)
	first := waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	second := waitRelease(t, rs, "prod2", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	if second.Requires != first.ID {
		t.Errorf("prod2's release requires %q, want prod1's %s", second.Requires, first.ID)
	}
	if first.TriggeredBy != "rel-manager" || first.PipelineID != 100 || first.To.SHA != strings.Repeat("1", 40) || first.To.Ref != "v1.0.0" {
		t.Errorf("traceability: by %q, pipeline %d, sha %s, ref %s", first.TriggeredBy, first.PipelineID, first.To.SHA, first.To.Ref)
	}
	for _, env := range []string{"prod1", "prod2"} {
		if n := r.replicas(env, "v1-0-0"); n != 2 {
			t.Errorf("%s: web-v1-0-0 has %d replicas, want 2", env, n)
		}
		r.waitWeights(env, map[string]int32{"": 100}) // the team's route, as it was
	}

	// The next tag: stage 1 sends 10 % to v1-1-0 and waits for a person.
	tag(t, m.Addr(), "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	if rel.From.Name != "v1-0-0" {
		t.Errorf("From = %q, want v1-0-0 (what prod1 served when it started)", rel.From.Name)
	}
	queued := waitRelease(t, rs, "prod2", "v1-1-0", "queued behind prod1", phaseIs(release.Pending))
	if !slices.ContainsFunc(queued.History, func(e release.Entry) bool { return strings.Contains(e.Message, "waiting for release "+rel.ID) }) {
		t.Errorf("prod2's release does not say what it waits for; history: %+v", queued.History)
	}

	if _, err := rs.Record(context.Background(), rel.ID, intent(release.IntentContinue, 0)); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 2", pausedAt(2))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	if a, b := r.replicas("prod1", "v1-0-0"), r.replicas("prod1", "v1-1-0"); a != 2 || b != 2 {
		t.Errorf("during the canary both versions run at full size: %d and %d, want 2 and 2", a, b)
	}

	if _, err := rs.Record(context.Background(), rel.ID, intent(release.IntentContinue, 0)); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, rs, "prod1", "v1-1-0", "succeeded", phaseIs(release.Succeeded))
	done := waitRelease(t, rs, "prod1", "v1-1-0", "old version scaled down after the delay", drained)
	r.waitWeights("prod1", map[string]int32{"": 100})
	if n := r.replicas("prod1", "v1-0-0"); n != 0 {
		t.Errorf("the old version keeps %d replicas after the release, want 0", n)
	}
	if !slices.ContainsFunc(done.History, func(e release.Entry) bool {
		return e.Kind == release.EntryCleanup && e.Message == "scaled down Deployment web-v1-0-0 after 1s"
	}) {
		t.Errorf("the history does not say the old version was scaled down:\n%s", entries(done.History))
	}
	var actors []string
	for _, in := range done.Intents {
		actors = append(actors, in.Actor+"/"+string(in.Surface)+"/"+string(in.Kind)+"/"+in.Outcome)
	}
	if want := []string{"alice/api/continue/applied", "alice/api/continue/applied"}; !slices.Equal(actors, want) {
		t.Errorf("intents %v, want %v", actors, want)
	}

	// prod1 succeeded, so prod2 starts its own stage 1; a rollback there
	// returns everything to v1-0-0.
	rel2 := waitRelease(t, rs, "prod2", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod2", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
	if _, err := rs.Record(context.Background(), rel2.ID, intent(release.IntentRollback, 0)); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, rs, "prod2", "v1-1-0", "rolled back", phaseIs(release.RolledBack))
	r.waitWeights("prod2", map[string]int32{"": 100})
	if a, b := r.replicas("prod2", "v1-0-0"), r.replicas("prod2", "v1-1-0"); a != 2 || b != 0 {
		t.Errorf("after the rollback: v1-0-0 %d and v1-1-0 %d replicas, want 2 and 0", a, b)
	}
}

// A newer tag that arrives during a release waits for it (queue), or stops
// it and takes over (supersede); either way the releases say which.
func TestNewerTagQueuesOrSupersedes(t *testing.T) {
	for _, mode := range []string{"queue", "supersede"} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, "prod1")
			m := r.start(r.config(canary + "\nonNewer: " + mode))
			rs := m.Releases()
			tag(t, m.Addr(), "v1.0.0", '1', 100)
			waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
			tag(t, m.Addr(), "v1.1.0", '2', 101)
			v2 := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))

			tag(t, m.Addr(), "v1.2.0", '3', 102)
			if mode == "queue" {
				v3 := waitRelease(t, rs, "prod1", "v1-2-0", "queued", phaseIs(release.Pending))
				if !slices.Equal(v3.After, []string{v2.ID}) {
					t.Errorf("v1-2-0 waits for %v, want [%s]", v3.After, v2.ID)
				}
				// It stays queued while v1-1-0 is paused; a rollback of v1-1-0 lets it start.
				r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})
				if _, err := rs.Record(context.Background(), v2.ID, intent(release.IntentRollback, 0)); err != nil {
					t.Fatal(err)
				}
			}
			waitRelease(t, rs, "prod1", "v1-1-0", "rolled back", phaseIs(release.RolledBack))
			v3 := waitRelease(t, rs, "prod1", "v1-2-0", "paused after stage 1", pausedAt(1))
			if v3.From.Name != "v1-0-0" {
				t.Errorf("v1-2-0 moves from %q, want v1-0-0, what serves after v1-1-0 rolled back", v3.From.Name)
			}
			r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-2-0": 10})
			if mode == "supersede" {
				got, _ := rs.Get(context.Background(), v2.ID)
				if len(got.Intents) != 1 || got.Intents[0].Kind != release.IntentRollback || got.Intents[0].Surface != release.SurfaceShipbot ||
					got.Intents[0].Comment != "superseded by v1-2-0" {
					t.Errorf("superseded release's intents: %+v", got.Intents)
				}
			}
			w, _ := r.weights("prod1")
			if _, ok := w["v1-1-0"]; ok {
				t.Errorf("v1-1-0 still has a route: %v", maps.Clone(w))
			}
		})
	}
}

// A rollback in prod1 aborts the tag's queued prod2 release before it read
// what prod2 serves. The next tag must still move prod2 from what serves
// there, through every stage, and scale that version down at the end.
func TestProd2AfterProd1RollbackKeepsItsStages(t *testing.T) {
	r := newRig(t, "prod1", "prod2")
	m := r.start(r.config(canary))
	rs := m.Releases()
	tag(t, m.Addr(), "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod2", "v1-0-0", "succeeded", phaseIs(release.Succeeded))

	tag(t, m.Addr(), "v1.1.0", '2', 101)
	v11 := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	if _, err := rs.Record(context.Background(), v11.ID, intent(release.IntentRollback, 0)); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, rs, "prod2", "v1-1-0", "aborted with prod1's rollback", phaseIs(release.Aborted))

	tag(t, m.Addr(), "v1.2.0", '3', 102)
	v12 := waitRelease(t, rs, "prod1", "v1-2-0", "paused after stage 1", pausedAt(1))
	for range 2 {
		if _, err := rs.Record(context.Background(), v12.ID, intent(release.IntentContinue, 0)); err != nil {
			t.Fatal(err)
		}
		v12 = waitRelease(t, rs, "prod1", "v1-2-0", "paused or done", func(x release.Release) bool {
			return x.Phase == release.Succeeded || (x.Phase == release.Paused && x.Stage > v12.Stage)
		})
	}
	p2 := waitRelease(t, rs, "prod2", "v1-2-0", "paused after stage 1", func(x release.Release) bool {
		return x.Phase.Terminal() || pausedAt(1)(x)
	})
	if p2.Phase != release.Paused || p2.From.Name != "v1-0-0" || len(p2.Stages) != 3 {
		t.Fatalf("prod2's v1-2-0 is %s from %q with %d stages, want paused at stage 1 from v1-0-0 with 3 stages",
			p2.Phase, p2.From.Name, len(p2.Stages))
	}
	r.waitWeights("prod2", map[string]int32{"v1-0-0": 90, "v1-2-0": 10})
	for range 2 {
		if _, err := rs.Record(context.Background(), p2.ID, intent(release.IntentContinue, 0)); err != nil {
			t.Fatal(err)
		}
		p2 = waitRelease(t, rs, "prod2", "v1-2-0", "paused or done", func(x release.Release) bool {
			return x.Phase == release.Succeeded || (x.Phase == release.Paused && x.Stage > p2.Stage)
		})
	}
	waitRelease(t, rs, "prod2", "v1-2-0", "succeeded", phaseIs(release.Succeeded))
	waitRelease(t, rs, "prod2", "v1-2-0", "old version scaled down after the delay", drained)
	if n := r.replicas("prod2", "v1-0-0"); n != 0 {
		t.Errorf("prod2's web-v1-0-0 keeps %d replicas after v1-2-0 succeeded, want 0", n)
	}
}

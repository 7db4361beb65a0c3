package release

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// pausedModel is a release that entered Paused at t0 waiting to start stage.
func pausedModel(stage int) Release {
	r := model(Paused, stage, 10)
	r.History = []Entry{{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused, Stage: stage, Message: "Verifying → Paused"}}
	return r
}

func approval(actor string, kind IntentKind, percent int, at time.Time) Approval {
	return Approval{Intent: Intent{Kind: kind, Percent: percent, Actor: actor, Surface: SurfaceSlack, At: at}, ChatID: "U-" + actor, Need: 2, Window: 24 * time.Hour}
}

// approve approves on r and fails the test unless the approvers are want.
func approve(t *testing.T, r *Release, a Approval, want ...string) {
	t.Helper()
	by, err := r.Approve(a)
	if err != nil {
		t.Fatalf("%s approves %s: %v", a.Intent.Actor, a.Intent, err)
	}
	if !slices.Equal(by, want) {
		t.Errorf("%s approves %s: approvers %v, want %v", a.Intent.Actor, a.Intent, by, want)
	}
}

func approvals(r Release) []Entry {
	var out []Entry
	for _, e := range r.History {
		if e.Kind == EntryApproval {
			out = append(out, e)
		}
	}
	return out
}

func TestApproveCountsDistinctPeoplePerIntent(t *testing.T) {
	r := pausedModel(1)
	approve(t, &r, approval("mia", IntentContinue, 0, t0), "mia")
	want := Entry{At: t0, Actor: "mia", ChatID: "U-mia", Surface: SurfaceSlack, Kind: EntryApproval, Phase: Paused, Stage: 1,
		Intent: "continue", Message: "approval 1 of 2 for continue to stage 2 by mia (slack)"}
	if got := approvals(r); len(got) != 1 || got[0] != want {
		t.Errorf("approval entries %+v, want [%+v]", got, want)
	}

	// The same person twice, whatever the case of their name, counts once
	// and adds nothing to the history.
	approve(t, &r, approval("Mia", IntentContinue, 0, t0.Add(time.Minute)), "mia")
	if n := len(approvals(r)); n != 1 {
		t.Errorf("%d approval entries after mia asked again, want 1", n)
	}

	// Each intent has its own count: promote to 50 %, to 100 % and continue.
	approve(t, &r, approval("bob", IntentPromote, 50, t0.Add(2*time.Minute)), "bob")
	approve(t, &r, approval("carol", IntentPromote, 100, t0.Add(3*time.Minute)), "carol")
	approve(t, &r, approval("carol", IntentPromoteFull, 0, t0.Add(3*time.Minute)), "carol")
	approve(t, &r, approval("bob", IntentContinue, 0, t0.Add(4*time.Minute)), "mia", "bob")

	got := approvals(r)
	if last := got[len(got)-1]; last.Message != "approval 2 of 2 for continue to stage 2 by bob (slack)" || last.Actor != "bob" {
		t.Errorf("last approval %+v", last)
	}
	if got[1].Intent != "promote to 50 %" || got[1].Message != "approval 1 of 2 for promote to 50 % at stage 2 by bob (slack)" {
		t.Errorf("promote approval %+v", got[1])
	}
	if r.Phase != Paused || r.Stage != 1 || len(r.Intents) != 0 {
		t.Errorf("approvals changed the release: phase %s stage %d intents %+v", r.Phase, r.Stage, r.Intents)
	}
}

func TestApprovalCountStartsOverWhenTheReleaseMoves(t *testing.T) {
	t.Run("a recorded intent spends the approvals", func(t *testing.T) {
		r := pausedModel(1)
		approve(t, &r, approval("mia", IntentContinue, 0, t0), "mia")
		approve(t, &r, approval("bob", IntentContinue, 0, t0), "mia", "bob")
		if err := r.Record(Intent{Kind: IntentContinue, Actor: "bob", Surface: SurfaceSlack, At: t0}); err != nil {
			t.Fatal(err)
		}
		approve(t, &r, approval("carol", IntentContinue, 0, t0), "carol")
	})
	t.Run("a pause and continue cycle", func(t *testing.T) {
		r := pausedModel(1)
		now := t0
		r.clock = func() time.Time { return now }
		approve(t, &r, approval("mia", IntentContinue, 0, now), "mia")
		now = now.Add(time.Minute)
		if err := r.Transition(Progressing, "continue by root via cli"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if err := r.Transition(Paused, "pause by root via cli"); err != nil {
			t.Fatal(err)
		}
		approve(t, &r, approval("bob", IntentContinue, 0, now), "bob")
	})
	t.Run("an approval kept while a step paused the release", func(t *testing.T) {
		// A step appends approvals recorded while it ran after its own
		// entries; one given before the pause does not count for it.
		r := pausedModel(1)
		r.History[0].At = t0.Add(time.Minute)
		r.History = append(r.History, Entry{At: t0, Actor: "mia", Surface: SurfaceSlack, Kind: EntryApproval, Phase: Verifying, Stage: 1, Intent: "continue"})
		approve(t, &r, approval("bob", IntentContinue, 0, t0.Add(2*time.Minute)), "bob")
	})
	t.Run("another stage", func(t *testing.T) {
		r := pausedModel(0)
		approve(t, &r, approval("mia", IntentContinue, 0, t0), "mia")
		r.Stage = 1 // as the engine leaves it; even without a transition the stage counts apart
		approve(t, &r, approval("bob", IntentContinue, 0, t0), "bob")
	})
	t.Run("the window", func(t *testing.T) {
		r := pausedModel(1)
		approve(t, &r, approval("mia", IntentContinue, 0, t0), "mia")
		approve(t, &r, approval("bob", IntentContinue, 0, t0.Add(25*time.Hour)), "bob")
		// Expired, mia may approve again, and counts again.
		approve(t, &r, approval("mia", IntentContinue, 0, t0.Add(26*time.Hour)), "bob", "mia")
		noWindow := approval("carol", IntentContinue, 0, t0.Add(48*time.Hour))
		noWindow.Window = 0
		approve(t, &r, noWindow, "mia", "bob", "carol")
	})
}

func TestApproveRefusesWhatTheReleaseCannotTake(t *testing.T) {
	for name, tc := range map[string]struct {
		r    Release
		a    Approval
		want error
	}{
		"continue while verifying": {model(Verifying, 1, 10), approval("mia", IntentContinue, 0, t0), ErrConflict},
		"an ended release":         {model(Succeeded, 3, 100), approval("mia", IntentPromoteFull, 0, t0), ErrConflict},
		"no stage at that percent": {pausedModel(1), approval("mia", IntentPromote, 30, t0), ErrInvalid},
		"no actor":                 {pausedModel(1), approval("", IntentContinue, 0, t0), ErrInvalid},
		"no time":                  {pausedModel(1), approval("mia", IntentContinue, 0, time.Time{}), ErrInvalid},
		"no need":                  {pausedModel(1), Approval{Intent: approval("mia", IntentContinue, 0, t0).Intent}, ErrInvalid},
	} {
		before := len(tc.r.History)
		if _, err := tc.r.Approve(tc.a); !errors.Is(err, tc.want) || len(tc.r.History) != before {
			t.Errorf("%s: %v, history %+v; want %v and nothing kept", name, err, tc.r.History, tc.want)
		}
	}
}

// TestApprovedIsStoredAndSurvivesAStepAndARestart counts approvals from the
// store: a step saving meanwhile keeps them, and so does reopening it.
func TestApprovedIsStoredAndSurvivesAStepAndARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	clock := fakeclock.New(t0)
	open := func() (*store.Store, *Stepper) {
		st, err := store.Open(path, store.Options{LockTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Clock: clock, Log: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return st, e
	}
	st, e := open()
	r, err := e.Create(t.Context(), storedRelease())
	if err != nil {
		t.Fatal(err)
	}
	err = st.UpdateRelease(r.ID, func(raw []byte) ([]byte, error) {
		var cur Release
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		cur.Phase, cur.Stage, cur.Percent = Paused, 1, 10
		cur.History = append(cur.History, Entry{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused, Stage: 1, Message: "Verifying → Paused"})
		return json.Marshal(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := e.Get(t.Context(), r.ID) // what a running Step holds

	clock.Advance(time.Minute)
	a := approval("mia", IntentContinue, 0, time.Time{}) // the engine fills in the time
	got, by, err := e.Approved(t.Context(), r.ID, a)
	if err != nil || !slices.Equal(by, []string{"mia"}) {
		t.Fatalf("first approval: %v, approvers %v", err, by)
	}
	if n := len(got.History); got.History[n-1].Kind != EntryApproval || !got.History[n-1].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("Approved returned history %s", history(got))
	}
	if err := e.save(&stale); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Approved(t.Context(), "r999", a); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approval of a missing release: %v, want ErrNotFound", err)
	}
	st.Close()

	st, e = open() // a restart
	defer st.Close()
	clock.Advance(time.Minute)
	got, by, err = e.Approved(t.Context(), r.ID, approval("bob", IntentContinue, 0, time.Time{}))
	if err != nil || !slices.Equal(by, []string{"mia", "bob"}) {
		t.Fatalf("second approval after a restart: %v, approvers %v; history %s", err, by, history(got))
	}
	stored, _ := e.Get(t.Context(), r.ID)
	if n := len(approvals(stored)); n != 2 || len(stored.Intents) != 0 {
		t.Errorf("stored approvals %d, intents %+v; history %s", n, stored.Intents, history(stored))
	}
}

package release

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// storeEngine is an engine on a temp store and no cluster, for what needs none.
func storeEngine(t *testing.T) *Stepper {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Clock: fakeclock.New(t0), Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func storedRelease() Release {
	return Release{
		App: "web", Environment: "prod", Cluster: "c1", Namespace: "web", Strategy: Canary,
		From: Revision{Name: "v1", Image: "web:1"}, To: Revision{Name: "v2", Image: "web:2"},
		Stages: []Stage{{Target: 10}, {Target: 100}},
		Params: templates.Params{Ports: []templates.Port{{Port: 80}}},
	}
}

func TestSaveKeepsIntentsRecordedDuringAStep(t *testing.T) {
	e := storeEngine(t)
	r, err := e.Create(t.Context(), storedRelease())
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := e.Get(t.Context(), r.ID) // what a running Step holds
	if _, err := e.Record(t.Context(), r.ID, Intent{Kind: IntentPause, Actor: "alice", Surface: SurfaceDingTalk}); err != nil {
		t.Fatal(err)
	}
	stale.Percent = 10 // the step's own progress
	if err := e.save(&stale); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Get(t.Context(), r.ID)
	if got.Percent != 10 || len(got.Intents) != 1 || got.Intents[0].Actor != "alice" || len(got.pendingIntents()) != 1 {
		t.Errorf("after save: percent %d, intents %+v", got.Percent, got.Intents)
	}
}

func TestCreateAllowsOneActiveReleasePerTarget(t *testing.T) {
	e := storeEngine(t)
	first, err := e.Create(t.Context(), storedRelease())
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "r000000000001" || first.Phase != Pending || first.Replicas != 1 || first.VirtualService != "web" {
		t.Errorf("created %+v", first)
	}
	if _, err := e.Create(t.Context(), storedRelease()); !errors.Is(err, ErrConflict) {
		t.Errorf("second release of the same target: %v, want ErrConflict", err)
	}
	other := storedRelease()
	other.Environment = "staging"
	if _, err := e.Create(t.Context(), other); err != nil {
		t.Errorf("release to another environment: %v", err)
	}
	bad := storedRelease()
	bad.Environment, bad.To.Name, bad.Stages = "dev", "V2!", []Stage{{Target: 50}}
	if _, err := e.Create(t.Context(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid release: %v, want ErrInvalid", err)
	}
	if _, err := e.Record(t.Context(), first.ID, Intent{Kind: IntentAbort, Actor: "bob", Surface: SurfaceAPI}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	active, err := e.Active(t.Context())
	if err != nil || len(active) != 1 || active[0].Environment != "staging" {
		t.Errorf("active after abort: %+v, %v", active, err)
	}
}

// An intent recorded while the step that ends the release is in hand is
// saved with the ended release (save merges it in) but was not acted on.
// The scheduler lists such a release as Unanswered, and its next Step
// answers the intent, refused, rather than leave it pending for ever.
func TestStepAnswersAnIntentLeftOnAnEndedRelease(t *testing.T) {
	h := newHarness(t)
	r := h.drive(h.create(h.release(Canary, "", "v1-0-0", 2)).ID, phaseIs(Succeeded))
	r.Intents = append(r.Intents, Intent{Seq: len(r.Intents) + 1, Kind: IntentAbort, Actor: "shipbot", Surface: "engine", At: t0, Comment: "superseded by v1-1-0"})
	if err := h.e.save(&r); err != nil {
		t.Fatal(err)
	}
	if u, err := h.e.Unanswered(t.Context()); err != nil || len(u) != 1 || u[0].ID != r.ID {
		t.Fatalf("unanswered %v (%v), want %s", u, err, r.ID)
	}
	if _, err := h.e.Step(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, h.e, r.ID)
	if in := got.Intents[len(got.Intents)-1]; in.Done.IsZero() || in.Outcome == "" || in.Outcome == OutcomeApplied {
		t.Errorf("the abort after the release ended: %+v, want it refused", in)
	}
	if got.Phase != Succeeded {
		t.Errorf("phase %s, want Succeeded still", got.Phase)
	}
	if u, err := h.e.Unanswered(t.Context()); err != nil || len(u) != 0 {
		t.Errorf("unanswered after the step: %v (%v)", u, err)
	}
}

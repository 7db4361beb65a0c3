package release

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// sundayFreeze freezes prod from 10:30 to 11:30 UTC every day; the
// harness clock starts at 10:00.
var sundayFreeze = FreezeCalendar{"prod": {{Cron: "30 10 * * *", Duration: time.Hour, Reason: "sunday"}}}

// frozenAt moves the clock into the freeze and opens an engine that reads it.
func (h *harness) frozenAt() {
	h.t.Helper()
	h.clock.Advance(time.Date(2026, 3, 1, 10, 45, 0, 0, time.UTC).Sub(h.clock.Now()))
	h.freezes = sundayFreeze
	h.reopen()
}

// entries lists the messages of r's history entries of a kind.
func entries(r Release, kind EntryKind) []string {
	var out []string
	for _, e := range r.History {
		if e.Kind == kind {
			out = append(out, e.Actor+": "+e.Message)
		}
	}
	return out
}

func hasPrefix(list []string, prefix string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// A tag's release, created as RecordBuild creates it (ResolveFrom), waits
// in the queue through a freeze window and starts when the window ends.
func TestFreezeWindowQueuesAReleaseUntilItEnds(t *testing.T) {
	h := newHarness(t)
	h.initial(Rolling, 1)
	h.frozenAt()
	rel := h.release(Rolling, "", "v1-1-0", 1)
	rel.ResolveFrom = true
	r := h.create(rel)

	res, err := h.e.Step(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	const msg = "frozen until 2026-03-01 11:30 UTC (shipbot.yaml: sunday)"
	r = h.get(r.ID)
	if r.Phase != Pending || r.Hold == nil || r.Hold.Message != msg || !strings.Contains(Describe(r, h.clock.Now()), msg) {
		t.Fatalf("in the freeze: %s, hold %+v, %q", r.Phase, r.Hold, Describe(r, h.clock.Now()))
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > HoldPoll {
		t.Errorf("held release asks to be stepped after %s", res.RequeueAfter)
	}
	if img := h.image("web"); img != "registry.local/web:v1.0.0" {
		t.Errorf("in the freeze the cluster runs %s", img)
	}

	r = h.drive(r.ID, phaseIs(Succeeded))
	if img := h.image("web"); img != "registry.local/web:v1.1.0" {
		t.Errorf("after the freeze the cluster runs %s", img)
	}
	started := r.History[slices.IndexFunc(r.History, func(e Entry) bool { return e.Phase == Progressing })]
	if started.At.Before(time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC)) {
		t.Errorf("started at %s, inside the freeze", started.At)
	}
	ev := entries(r, EntryEvent)
	if !hasPrefix(ev, "shipbot: Held: "+msg) || !hasPrefix(ev, "shipbot: Released: no longer held: "+msg) || r.Hold != nil {
		t.Errorf("history of events:\n%s", strings.Join(ev, "\n"))
	}
}

// A release running when a freeze begins stops before its next stage and
// goes on once the freeze is over.
func TestFreezeHoldsARunningReleaseAtItsNextStage(t *testing.T) {
	h := newHarness(t)
	h.initial(Groups, 4)
	r := h.create(h.release(Groups, "v1-0-0", "v2-0-0", 4, Stage{Target: 50, Continue: Manual}, Stage{Target: 100}))
	r = h.drive(r.ID, phaseIs(Paused))
	h.frozenAt()
	h.record(r.ID, IntentContinue, 0)
	if _, err := h.e.Step(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	r = h.get(r.ID)
	if r.Hold == nil || r.Hold.Kind != HoldFreeze || r.Stage != 1 || r.Percent != 50 {
		t.Fatalf("continued in a freeze: stage %d at %d %%, hold %+v", r.Stage, r.Percent, r.Hold)
	}
	if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 2 || v2 != 2 {
		t.Errorf("held at the next stage: v1=%d v2=%d, want 2 2", v1, v2)
	}
	h.drive(r.ID, phaseIs(Succeeded))
	if v2 := h.replicas("web-v2-0-0"); v2 != 4 {
		t.Errorf("after the freeze: v2=%d, want 4", v2)
	}
}

// A Maintainer's override releases through the freeze, and is audited.
func TestFreezeOverrideIsAudited(t *testing.T) {
	h := newHarness(t)
	h.initial(Rolling, 1)
	h.frozenAt()
	r := h.create(h.release(Rolling, "v1-0-0", "v1-1-0", 1))
	if _, err := h.e.Step(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Record(t.Context(), r.ID, Intent{Kind: IntentOverrideFreeze, Actor: "mia", Surface: SurfaceMRComment}); err == nil {
		t.Fatal("an override without a reason was recorded")
	}
	_, err := h.e.Record(t.Context(), r.ID, Intent{Kind: IntentOverrideFreeze, Actor: "mia", Surface: SurfaceMRComment, Comment: "hotfix INC-7"})
	if err != nil {
		t.Fatal(err)
	}
	r = h.drive(r.ID, phaseIs(Succeeded))
	if now := h.clock.Now(); !now.Before(time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC)) {
		t.Errorf("released at %s, after the freeze: the override did nothing", now)
	}
	if r.Override == nil || r.Override.By != "mia" || r.Override.Reason != "hotfix INC-7" || r.Override.Via != SurfaceMRComment {
		t.Errorf("override %+v", r.Override)
	}
	if !hasPrefix(entries(r, EntryIntent), "mia: override-freeze requested: hotfix INC-7") ||
		!hasPrefix(entries(r, EntryEvent), "mia: FreezeOverride: freeze overridden by mia via mr-comment: hotfix INC-7") {
		t.Errorf("history:\n%s", history(r))
	}
	if !slices.Contains(h.reasons(r.ID), ReasonFreezeOverride) {
		t.Errorf("notifiers heard %v, not the override", h.reasons(r.ID))
	}
	if _, err := h.e.Record(t.Context(), r.ID, Intent{Kind: IntentOverrideFreeze, Actor: "max", Surface: SurfaceAPI, Comment: "again"}); err == nil {
		t.Error("a second override of an ended release was recorded")
	}
}

// A lock holds releases that its holder does not drive; unlocking lets
// them go.
func TestLockHoldsOthersReleases(t *testing.T) {
	h := newHarness(t)
	h.initial(Rolling, 1)
	if _, err := h.e.LockEnvironment(t.Context(), Lock{Environment: "prod", Holder: "mia", Reason: "db migration", Surface: SurfaceCLI}); err != nil {
		t.Fatal(err)
	}
	rel := h.release(Rolling, "v1-0-0", "v1-1-0", 1)
	rel.TriggeredBy = "ci-bot"
	r := h.create(rel)
	if _, err := h.e.Step(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	if r = h.get(r.ID); r.Phase != Pending || r.Hold == nil || r.Hold.Message != `prod is locked by mia: "db migration"` {
		t.Fatalf("under lock: %s, hold %+v", r.Phase, r.Hold)
	}
	if _, err := h.e.Record(t.Context(), r.ID, Intent{Kind: IntentAbort, Actor: "alice", Surface: SurfaceSlack}); err == nil ||
		!strings.Contains(err.Error(), `prod is locked by mia: "db migration"; only mia can act`) {
		t.Errorf("alice's abort under lock: %v", err)
	}
	if _, err := h.e.Unlock(t.Context(), "prod", "alice", SurfaceSlack, false); err == nil {
		t.Error("alice unlocked mia's lock without force")
	}
	if _, err := h.e.Unlock(t.Context(), "prod", "mia", SurfaceCLI, false); err != nil {
		t.Fatal(err)
	}
	r = h.drive(r.ID, phaseIs(Succeeded))
	if img := h.image("web"); img != "registry.local/web:v1.1.0" {
		t.Errorf("after unlock the cluster runs %s", img)
	}
	if !hasPrefix(entries(r, EntryEvent), "mia: environment prod unlocked by mia") {
		t.Errorf("history:\n%s", history(r))
	}
}

package release

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestPromoteToAnyRatio(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)

	r := h.release(Canary, "v1-0-0", "v2-0-0", 2, manual3...)
	r.AnyWeight = true
	r = h.create(r)
	h.drive(r.ID, phaseIs(Paused))
	h.record(r.ID, IntentPromote, 20)
	got := h.drive(r.ID, phaseIs(Paused))
	if w := h.weights(); !maps.Equal(w, map[string]int32{"v1-0-0": 80, "v2-0-0": 20}) {
		t.Errorf("after /promote 20: weights %v, want 80/20", w)
	}
	if d := Describe(got, h.clock.Now()); d != "stage 3/4 · 20 % · waiting for approval 0s" {
		t.Errorf("Describe = %q", d)
	}
	h.record(r.ID, IntentContinue, 0)
	h.drive(r.ID, phaseIs(Paused))
	if w := h.weights(); !maps.Equal(w, split50) {
		t.Errorf("continue after 20 %%: weights %v, want the next step, 50/50", w)
	}
}

func TestPromoteToARatioNoStepHasIsRefused(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	h.initial(Canary, 2)
	r := canaryV2(h, manual3...)
	h.drive(r.ID, phaseIs(Paused))
	_, err := h.e.Record(h.t.Context(), r.ID, Intent{Kind: IntentPromote, Percent: 20, Actor: "alice", Surface: SurfaceSlack})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "20 % is not one of the steps; allowed: 50, 100 %") {
		t.Fatalf("Record = %v, want a refusal listing the allowed steps", err)
	}
	if w := h.weights(); !maps.Equal(w, split10) {
		t.Errorf("weights %v, want 90/10 unchanged", w)
	}
}

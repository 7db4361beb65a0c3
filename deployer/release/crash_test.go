package release

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

// A shipbot that dies anywhere in a step leaves a store from which a new
// one, on the same file, reaches the same end state.
func TestCrashResumesFromTheStore(t *testing.T) {
	tests := []struct {
		name     string
		strategy Strategy
		stop     func(r *Release, action string) bool
	}{
		{"canary: after ensure in stage 1", Canary, func(r *Release, a string) bool { return a == "ensure" }},
		{"canary: after setting stage 2's weight", Canary, func(r *Release, a string) bool { return a == "set-target" && r.Stage == 1 }},
		{"canary: between stages 1 and 2", Canary, func(r *Release, a string) bool { return a == "progressing" && r.Stage == 1 }},
		{"canary: in finalize", Canary, func(r *Release, a string) bool { return a == "finalize" }},
		{"groups: mid-shift in stage 1", Groups, func(r *Release, a string) bool { return a == "set-target" && r.Stage == 0 }},
		{"groups: between stages 1 and 2", Groups, func(r *Release, a string) bool { return a == "progressing" && r.Stage == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			orig := h.foreignVirtualService()
			h.initial(tt.strategy, 4)
			rel := h.release(tt.strategy, "v1-0-0", "v2-0-0", 4, Stage{Target: 25}, Stage{Target: 50}, Stage{Target: 100})
			rel.ScaleDownDelay = ptr.To(time.Duration(0)) // the old version goes as the release ends
			r := h.create(rel)

			crashed := h.stepUntilCrash(r.ID, tt.stop)
			h.reopen() // a new engine on the same store file; the old one is never used again
			resumed := h.get(r.ID)
			if resumed.Phase != crashed.Phase || resumed.Stage != crashed.Stage {
				t.Errorf("store has %s stage %d, the crashed engine had %s stage %d", resumed.Phase, resumed.Stage, crashed.Phase, crashed.Stage)
			}
			r = h.drive(r.ID, phaseIs(Succeeded))

			if v1, v2 := h.replicas("web-v1-0-0"), h.replicas("web-v2-0-0"); v1 != 0 || v2 != 4 {
				t.Errorf("end: v1=%d v2=%d, want 0 4", v1, v2)
			}
			if tt.strategy == Canary {
				h.wantOriginal(orig)
				if got := h.subsets(); !slices.Equal(got, []string{"v2-0-0=v2-0-0"}) {
					t.Errorf("end: subsets %v", got)
				}
			}
			if r.Percent != 100 || r.Stage != 3 {
				t.Errorf("end: stage %d percent %d", r.Stage, r.Percent)
			}
		})
	}
}

// stepUntilCrash steps with an engine whose context is cancelled right after
// the action stop picks has been persisted, as if the process died there.
func (h *harness) stepUntilCrash(id string, stop func(*Release, string) bool) Release {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	defer cancel()
	var at Release
	h.e.afterAction = func(r *Release, action string) {
		if ctx.Err() == nil && stop(r, action) {
			at = r.snapshot()
			cancel()
		}
	}
	for range 500 {
		res, err := h.e.Step(ctx, id)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				h.t.Errorf("step cut short with %v, want context.Canceled", err)
			}
			h.t.Logf("crashed: %s, step error: %v", Describe(at, h.clock.Now()), err)
			return at
		}
		if err != nil {
			h.t.Fatalf("step: %v", err)
		}
		if res.Done {
			h.t.Fatalf("release ended (%s) before the crash point", res.Summary)
		}
		h.clock.Advance(res.RequeueAfter)
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatal("crash point never reached")
	return at
}

package release

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// groupOf creates web's and api's releases v1 → v2 in one group, after a
// first release of each.
func groupOf(h *harness, stages ...Stage) (web, api Release) {
	h.t.Helper()
	h.initial(Canary, 2)
	first := h.release(Canary, "", "v1-0-0", 2)
	first.App = "api"
	h.drive(h.create(first).ID, phaseIs(Succeeded))
	web = h.release(Canary, "v1-0-0", "v2-0-0", 2, stages...)
	web.Group = "shop/web/g@prod/1"
	api = web
	api.App = "api"
	return h.create(web), h.create(api)
}

func waitingForGroup(r Release) bool {
	return strings.HasPrefix(r.lastEvent(), string(ReasonGroupWait)+": ")
}

// driveAll steps every release in turn until all satisfy cond.
func (h *harness) driveAll(cond func(Release) bool, ids ...string) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		var wait time.Duration
		for _, id := range ids {
			res, err := h.e.Step(h.t.Context(), id)
			if err != nil {
				h.t.Fatalf("step %s: %v", id, err)
			}
			if !cond(h.get(id)) {
				done = false
				wait = max(wait, res.RequeueAfter)
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				r := h.get(id)
				h.t.Logf("%s %s %s; history:\n%s", r.App, id, r.Phase, history(r))
			}
			h.t.Fatal("the group did not get there")
		}
		h.clock.Advance(wait)
		time.Sleep(25 * time.Millisecond)
	}
}

func TestGroupMovesStageByStage(t *testing.T) {
	h := newHarness(t)
	h.foreignVirtualService()
	web, api := groupOf(h, Stage{Target: 10}, Stage{Target: 50}, Stage{Target: 100})

	got := h.drive(web.ID, waitingForGroup)
	if got.Stage != 1 || got.Percent != 10 || !maps.Equal(h.weights(), split10) {
		t.Errorf("web alone: stage %d at %d %%, weights %v; want it to wait at 10 %% for api", got.Stage, got.Percent, h.weights())
	}
	if msg := got.lastEvent(); !strings.Contains(msg, "waiting for release "+api.ID+" (api v2-0-0 in prod on local) to finish stage 1/3") {
		t.Errorf("web says %q", msg)
	}
	if a := h.get(api.ID); a.Phase != Pending {
		t.Errorf("api is %s, want still pending", a.Phase)
	}
	h.driveAll(phaseIs(Succeeded), web.ID, api.ID)
	for _, id := range []string{web.ID, api.ID} {
		for _, e := range h.get(id).History {
			if e.Kind == EntryTransition && e.Phase == Succeeded && h.get(id).Stage != 3 {
				t.Errorf("%s succeeded at stage %d", id, h.get(id).Stage)
			}
		}
	}
}

func TestGroupRollsBackTogether(t *testing.T) {
	h := newHarness(t)
	orig := h.foreignVirtualService()
	web, api := groupOf(h, Stage{Target: 10, Continue: Manual}, Stage{Target: 100})
	h.driveAll(phaseIs(Paused), web.ID, api.ID)
	if !maps.Equal(h.weights(), split10) {
		t.Fatalf("web at 10 %%: weights %v", h.weights())
	}
	h.record(api.ID, IntentRollback, 0)
	h.drive(api.ID, phaseIs(RolledBack))
	got := h.drive(web.ID, phaseIs(RolledBack))
	if !strings.Contains(got.Reason, "group shop/web/g@prod/1: release "+api.ID) {
		t.Errorf("web's reason %q, want api's rollback named", got.Reason)
	}
	h.drainOld(web.ID)
	h.wantOriginal(orig)
}

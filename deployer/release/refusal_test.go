package release

import (
	"errors"
	"strings"
	"testing"
)

func refusal(actor, chatID string, surface Surface) Refusal {
	return Refusal{
		Intent: Intent{Kind: IntentRollback, Actor: actor, Surface: surface, At: t0},
		ChatID: chatID, Reason: actor + " is Reporter on shop/web; prod needs Maintainer",
	}
}

func TestRefuseAppendsAnAuditEntryOnly(t *testing.T) {
	r := model(Paused, 0, 10)
	before := r.snapshot()
	if err := r.Refuse(refusal("carol", "U0CAROL", SurfaceSlack)); err != nil {
		t.Fatal(err)
	}
	want := Entry{At: t0, Actor: "carol", ChatID: "U0CAROL", Surface: SurfaceSlack, Kind: EntryRefusal, Phase: Paused, Stage: 0,
		Message: "rollback refused: carol is Reporter on shop/web; prod needs Maintainer"}
	if len(r.History) != 1 || r.History[0] != want {
		t.Errorf("history %+v, want [%+v]", r.History, want)
	}
	if r.Phase != before.Phase || r.Stage != before.Stage || len(r.Intents) != 0 || r.Reason != "" {
		t.Errorf("a refusal changed the release: phase %s stage %d intents %+v reason %q", r.Phase, r.Stage, r.Intents, r.Reason)
	}

	// An ended release keeps refusals too: the audit is about who tried.
	done := model(Succeeded, 3, 100)
	if err := done.Refuse(refusal("carol", "", SurfaceMRComment)); err != nil || len(done.History) != 1 {
		t.Errorf("refusal on an ended release: %v, %+v", err, done.History)
	}
}

func TestRefuseValidates(t *testing.T) {
	for name, f := range map[string]Refusal{
		"no actor":   refusal("", "", SurfaceSlack),
		"no surface": refusal("carol", "", ""),
		"no reason":  {Intent: Intent{Kind: IntentPause, Actor: "carol", Surface: SurfaceAPI, At: t0}},
		"no time":    {Intent: Intent{Kind: IntentPause, Actor: "carol", Surface: SurfaceAPI}, Reason: "no"},
	} {
		r := model(Paused, 0, 10)
		if err := r.Refuse(f); !errors.Is(err, ErrInvalid) || len(r.History) != 0 {
			t.Errorf("%s: %v, history %+v; want ErrInvalid and nothing kept", name, err, r.History)
		}
	}
	// A chat id alone names the actor: someone shipbot could not link to GitLab.
	r := model(Paused, 0, 10)
	if err := r.Refuse(refusal("", "U0NOBODY", SurfaceSlack)); err != nil || r.History[0].ChatID != "U0NOBODY" {
		t.Errorf("refusal of an unlinked chat user: %v, %+v", err, r.History)
	}
}

func TestRefuseIsBounded(t *testing.T) {
	r := model(Paused, 0, 10)
	for range maxRefusals + 5 {
		if err := r.Refuse(refusal("carol", "", SurfaceMRComment)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.refusals(); n != maxRefusals {
		t.Errorf("kept %d refusals, want %d", n, maxRefusals)
	}
}

func TestRefusedIsStoredAndSurvivesAStep(t *testing.T) {
	e := storeEngine(t)
	r, err := e.Create(t.Context(), storedRelease())
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := e.Get(t.Context(), r.ID) // what a running Step holds
	f := refusal("carol", "", SurfaceMRComment)
	f.Intent.At = t0.Add(-1) // the engine fills At only when it is zero
	got, err := e.Refused(t.Context(), r.ID, f)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.History); n == 0 || got.History[n-1].Kind != EntryRefusal {
		t.Fatalf("Refused returned history %+v", got.History)
	}
	stale.Percent = 10 // the step's own progress
	if err := e.save(&stale); err != nil {
		t.Fatal(err)
	}
	if err := e.save(&stale); err != nil { // saving again must not duplicate it
		t.Fatal(err)
	}
	stored, _ := e.Get(t.Context(), r.ID)
	if stored.Percent != 10 || stored.refusals() != 1 || len(stored.Intents) != 0 {
		t.Errorf("after the step saved: percent %d, refusals %d, intents %+v; history %s", stored.Percent, stored.refusals(), stored.Intents, history(stored))
	}

	if _, err := e.Refused(t.Context(), r.ID, Refusal{Intent: Intent{Kind: IntentPause, Surface: SurfaceAPI}, Reason: "no"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("refusal without actor: %v, want ErrInvalid", err)
	}
	if _, err := e.Refused(t.Context(), "r999", f); err == nil {
		t.Error("refusal on a missing release succeeded")
	}
}

// Every entry an accepted intent causes names the person and the surface.
func TestAppliedIntentEntriesCarryActorAndSurface(t *testing.T) {
	for _, kind := range []IntentKind{IntentContinue, IntentPause, IntentPromote, IntentRollback, IntentAbort} {
		r := model(Paused, 0, 10)
		if kind == IntentPause {
			r = model(Verifying, 0, 10)
		}
		in := Intent{Kind: kind, Actor: "dave", Surface: SurfaceMRComment, At: t0}
		if kind == IntentPromote {
			in.Percent = 50
		}
		if err := r.Record(in); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if err := r.apply(&r.Intents[0]); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if len(r.History) < 2 {
			t.Fatalf("%s: history %+v", kind, r.History)
		}
		for _, e := range r.History {
			if e.Actor != "dave" || e.Surface != SurfaceMRComment {
				t.Errorf("%s: entry %+v does not name dave via mr-comment", kind, e)
			}
		}
		// What the engine does on its own afterwards is the engine's.
		r.note(EntryEvent, "later")
		if e := r.History[len(r.History)-1]; e.Actor != EngineActor || e.Surface != "" {
			t.Errorf("%s: engine entry %+v", kind, e)
		}
		if !strings.Contains(r.History[1].Message, "by dave via mr-comment") {
			t.Errorf("%s: %q", kind, r.History[1].Message)
		}
	}
}

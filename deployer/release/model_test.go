package release

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// model is a release as Create leaves it, without a store.
func model(phase Phase, stage, percent int) Release {
	r := Release{
		ID: "r1", App: "web", Environment: "prod", Cluster: "c1", Namespace: "web", Strategy: Canary,
		From: Revision{Name: "v1-3-0", Image: "web:1.3.0"}, To: Revision{Name: "v1-4-0", Image: "web:1.4.0"},
		Stages: []Stage{{Target: 10, Continue: Manual}, {Target: 50, Continue: Auto}, {Target: 100, Continue: Auto}},
		Stage:  stage, Percent: percent, Phase: phase, Created: t0, Updated: t0,
		clock: func() time.Time { return t0 },
	}
	return r
}

func TestTransitionTable(t *testing.T) {
	for from, tos := range allowed {
		for _, to := range []Phase{Pending, Progressing, Verifying, Paused, RollingBack, Succeeded, RolledBack, Failed, Aborted} {
			r := model(from, 0, 0)
			err := r.Transition(to, "test")
			want := false
			for _, ok := range tos {
				want = want || ok == to
			}
			switch {
			case want && err != nil:
				t.Errorf("%s → %s: %v, want allowed", from, to, err)
			case !want && !errors.Is(err, ErrConflict):
				t.Errorf("%s → %s: err = %v, want ErrConflict", from, to, err)
			case !want && r.Phase != from:
				t.Errorf("%s → %s refused but phase changed to %s", from, to, r.Phase)
			case want && (r.Phase != to || len(r.History) != 1 || !strings.Contains(r.History[0].Message, "test")):
				t.Errorf("%s → %s: phase %s, history %+v", from, to, r.Phase, r.History)
			}
		}
	}
	for _, p := range []Phase{Succeeded, RolledBack, Failed, Aborted} {
		if !p.Terminal() {
			t.Errorf("%s is not terminal", p)
		}
	}
}

func intent(kind IntentKind, percent int) Intent {
	return Intent{Kind: kind, Percent: percent, Actor: "alice", Surface: SurfaceSlack, At: t0}
}

// drawn is in as asked from a message drawn for stage (counted from 1).
func drawn(in Intent, stage int) Intent { in.Drawn = stage; return in }

func TestRecordValidatesAgainstPhase(t *testing.T) {
	tests := []struct {
		name    string
		phase   Phase
		stage   int
		in      Intent
		wantErr error
		errHas  string
	}{
		{"continue when paused", Paused, 1, intent(IntentContinue, 0), nil, ""},
		{"continue when progressing", Progressing, 0, intent(IntentContinue, 0), ErrConflict, "not paused"},
		{"pause when progressing", Progressing, 0, intent(IntentPause, 0), nil, ""},
		{"pause when paused", Paused, 1, intent(IntentPause, 0), ErrConflict, "already paused"},
		{"promote to a later stage", Paused, 1, intent(IntentPromote, 100), nil, ""},
		{"promote to the waiting stage", Paused, 1, intent(IntentPromote, 50), nil, ""},
		{"promote to no stage", Paused, 1, intent(IntentPromote, 30), ErrInvalid, "30 % is not one of the steps; allowed: 50, 100 %"},
		{"promote backwards", Paused, 1, intent(IntentPromote, 10), ErrConflict, "already past 10 %"},
		{"promote the running stage", Progressing, 1, intent(IntentPromote, 50), ErrConflict, "already in progress"},
		{"promote 0", Paused, 1, intent(IntentPromote, 0), ErrInvalid, "1..100"},
		{"promote full", Verifying, 0, intent(IntentPromoteFull, 0), nil, ""},
		{"rollback", Verifying, 0, intent(IntentRollback, 0), nil, ""},
		{"rollback twice", RollingBack, 0, intent(IntentRollback, 0), ErrConflict, "already rolling back"},
		{"abort while rolling back", RollingBack, 0, intent(IntentAbort, 0), nil, ""},
		{"anything once ended", Succeeded, 3, intent(IntentAbort, 0), ErrConflict, "already ended"},
		{"no actor", Paused, 1, Intent{Kind: IntentContinue, Surface: SurfaceCLI, At: t0}, ErrInvalid, "no actor"},
		{"unknown surface", Paused, 1, Intent{Kind: IntentContinue, Actor: "a", Surface: "fax", At: t0}, ErrInvalid, "surface"},
		{"unknown kind", Paused, 1, intent("skip", 0), ErrInvalid, "unknown intent"},
		{"continue drawn for this stage", Paused, 1, drawn(intent(IntentContinue, 0), 2), nil, ""},
		{"continue drawn for an earlier stage", Paused, 1, drawn(intent(IntentContinue, 0), 1), ErrConflict, "asked of stage 1, and the release has moved to stage 2"},
		{"promote drawn for a later stage", Paused, 1, drawn(intent(IntentPromote, 100), 3), ErrConflict, "asked of stage 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := model(tt.phase, tt.stage, 0)
			err := r.Record(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Record: %v", err)
				}
				if len(r.Intents) != 1 || r.Intents[0].Seq != 1 || len(r.History) != 1 || r.History[0].Actor != "alice" || r.History[0].Surface != SurfaceSlack {
					t.Errorf("intents %+v, history %+v", r.Intents, r.History)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Record = %v, want %v containing %q", err, tt.wantErr, tt.errHas)
			}
			if len(r.Intents) != 0 || r.Phase != tt.phase {
				t.Errorf("a refused intent changed the release: %+v", r)
			}
		})
	}
}

func TestApplyIntentMovesStageAndPhase(t *testing.T) {
	tests := []struct {
		name      string
		phase     Phase
		stage     int
		in        Intent
		wantPhase Phase
		wantStage int
	}{
		{"continue", Paused, 1, intent(IntentContinue, 0), Progressing, 1},
		{"pause", Verifying, 0, intent(IntentPause, 0), Paused, 0},
		{"promote 50 from stage 1", Verifying, 0, intent(IntentPromote, 50), Progressing, 1},
		{"promote full while paused", Paused, 1, intent(IntentPromoteFull, 0), Progressing, 2},
		{"rollback", Paused, 1, intent(IntentRollback, 0), RollingBack, 1},
		{"abort", Progressing, 1, intent(IntentAbort, 0), Aborted, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := model(tt.phase, tt.stage, 10)
			r.Checks = []Check{{Stage: tt.stage, When: After, Gate: "g", Status: CheckRunning}}
			in := tt.in
			if err := r.apply(&in); err != nil {
				t.Fatal(err)
			}
			if r.Phase != tt.wantPhase || r.Stage != tt.wantStage {
				t.Errorf("phase %s stage %d, want %s %d", r.Phase, r.Stage, tt.wantPhase, tt.wantStage)
			}
			last := r.History[len(r.History)-1]
			if last.Actor != "alice" || !strings.Contains(last.Message, "alice via slack") {
				t.Errorf("history %+v does not say who", last)
			}
		})
	}
}

func TestMergeIntentsKeepsConcurrentRecords(t *testing.T) {
	stored := model(Paused, 1, 10)
	mine := stored
	if err := stored.Record(intent(IntentContinue, 0)); err != nil {
		t.Fatal(err)
	}
	mine.mergeIntents(stored.Intents)
	mine.mergeIntents(stored.Intents) // twice: no duplicate
	if len(mine.Intents) != 1 || len(mine.pendingIntents()) != 1 || len(mine.History) != 1 {
		t.Errorf("after merge: intents %+v history %+v", mine.Intents, mine.History)
	}
}

func TestPromoteToAnyWeight(t *testing.T) {
	r := model(Paused, 1, 10)
	r.Checks = []Check{{Stage: 0, When: Pods, Gate: "pods", Status: CheckPassed}, {Stage: 1, When: Before, Gate: "smoke", Status: CheckPassed}}
	if err := r.Record(intent(IntentPromote, 20)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "allowed: 50, 100 %") {
		t.Fatalf("without anyWeight: Record = %v, want the allowed steps", err)
	}
	r.AnyWeight = true
	if err := r.Record(intent(IntentPromote, 5)); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already past 5 %") {
		t.Errorf("promote below the stage done: %v", err)
	}
	in := intent(IntentPromote, 20)
	if err := r.Record(in); err != nil {
		t.Fatal(err)
	}
	if err := r.apply(&r.Intents[0]); err != nil {
		t.Fatal(err)
	}
	if got := r.targets(); !slices.Equal(got, []int{10, 20, 50, 100}) || r.Stage != 1 || r.Phase != Progressing {
		t.Fatalf("targets %v, stage %d, phase %s; want a stage at 20 %% to be the current one", got, r.Stage, r.Phase)
	}
	if s := r.Stages[1]; s.Continue != Manual || len(s.After) != len(r.Stages[2].After) {
		t.Errorf("inserted stage %+v, want manual with the next stage's gates", s)
	}
	if r.Checks[0].Stage != 0 || r.Checks[1].Stage != 2 {
		t.Errorf("checks %+v: the 50 %% stage's check must move with it", r.Checks)
	}
}

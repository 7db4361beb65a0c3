package release

import (
	"fmt"
	"slices"
)

// Phase is where a release is in its life. It is stored as a string, so a
// reordering of the constants can never reinterpret old data.
type Phase string

// Phases. Paused always means "waiting to (re)start stage Stage": a release is
// paused either after a manual stage, by a pause intent or by a gate whose
// failure action is to pause.
const (
	Pending     Phase = "Pending"     // created; nothing applied yet
	Progressing Phase = "Progressing" // before-gates, then moving traffic or replicas to the stage's target
	Verifying   Phase = "Verifying"   // the stage's target is in effect; after-gates run
	Paused      Phase = "Paused"      // waiting for a continue or promote intent
	RollingBack Phase = "RollingBack" // returning everything to From
	Succeeded   Phase = "Succeeded"   // To serves everything; From is scaled to 0
	RolledBack  Phase = "RolledBack"  // From serves everything again; To is scaled to 0
	Failed      Phase = "Failed"      // stopped on an error that needs a person, e.g. a rollback that cannot be applied
	Aborted     Phase = "Aborted"     // stopped by a person; the cluster is left as it was
)

// allowed is the one table of phase transitions; Transition, the only
// writer of Release.Phase, enforces it.
var allowed = map[Phase][]Phase{
	Pending:     {Progressing, Paused, RollingBack, Failed, Aborted},
	Progressing: {Verifying, Paused, RollingBack, Succeeded, Failed, Aborted},
	Verifying:   {Progressing, Paused, RollingBack, Failed, Aborted},
	Paused:      {Progressing, RollingBack, Failed, Aborted},
	RollingBack: {RolledBack, Failed, Aborted},
	Succeeded:   nil,
	RolledBack:  nil,
	Failed:      nil,
	Aborted:     nil,
}

// Terminal reports whether p is an end state: the engine does nothing more.
func (p Phase) Terminal() bool {
	next, known := allowed[p]
	return known && len(next) == 0
}

// Valid reports whether p is one of the phases above.
func (p Phase) Valid() bool {
	_, ok := allowed[p]
	return ok
}

// Transition moves the release to phase p and records why in its history. It fails
// with ErrConflict when the transition table does not allow the move.
func (r *Release) Transition(p Phase, why string) error {
	if !slices.Contains(allowed[r.Phase], p) {
		return fmt.Errorf("release %s: %s → %s: %w: transition not allowed", r.ID, r.Phase, p, ErrConflict)
	}
	from := r.Phase
	r.Phase = p
	r.Updated = r.now()
	r.History = append(r.History, Entry{
		At: r.Updated, Actor: r.actorOrEngine(), Surface: r.via, Kind: EntryTransition,
		Phase: p, Stage: r.Stage, Message: fmt.Sprintf("%s → %s: %s", from, p, why),
	})
	return nil
}

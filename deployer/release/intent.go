package release

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IntentKind is what a person asks of a release.
type IntentKind string

// Intent kinds.
const (
	IntentContinue    IntentKind = "continue"     // start the stage a paused release waits at
	IntentPause       IntentKind = "pause"        // stop advancing; continue re-runs the current stage
	IntentPromote     IntentKind = "promote"      // jump to the stage whose target is Percent
	IntentPromoteFull IntentKind = "promote-full" // jump to the last stage (100 %)
	IntentRollback    IntentKind = "rollback"     // return everything to From
	IntentAbort       IntentKind = "abort"        // stop now and leave the cluster as it is
)

// Surface is where an intent came from.
type Surface string

// Surfaces.
const (
	SurfaceSlack     Surface = "slack"
	SurfaceDingTalk  Surface = "dingtalk"
	SurfaceMRComment Surface = "mr-comment"
	SurfaceCLI       Surface = "cli"
	SurfaceAPI       Surface = "api"
)

// SurfaceShipbot marks intents shipbot records itself, e.g. rolling back a
// release that a newer one supersedes.
const SurfaceShipbot Surface = "shipbot"

var surfaces = []Surface{SurfaceSlack, SurfaceDingTalk, SurfaceMRComment, SurfaceCLI, SurfaceAPI, SurfaceShipbot}

// Intent is a recorded request; the engine acts on it at its next step.
type Intent struct {
	Seq     int        `json:"seq"`
	Kind    IntentKind `json:"kind"`
	Percent int        `json:"percent,omitempty"` // promote only
	// Drawn is the stage, counted from 1, that the asker saw when asking,
	// e.g. the stage a chat button was drawn for; 0 when the surface does
	// not say. A release at another stage refuses the intent: a stale
	// Continue for stage 1 must not continue stage 2.
	Drawn   int       `json:"drawn,omitempty"`
	Actor   string    `json:"actor"`
	Surface Surface   `json:"surface"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
	Done    time.Time `json:"done,omitzero"`     // when the engine acted on it or refused it
	Outcome string    `json:"outcome,omitempty"` // "applied", or why it was refused
}

// Outcome of an intent the engine acted on.
const OutcomeApplied = "applied"

// String says what was asked, e.g. "promote to 50 %".
func (in Intent) String() string {
	if in.Kind == IntentPromote {
		return "promote to " + strconv.Itoa(in.Percent) + " %"
	}
	return string(in.Kind)
}

// Record validates an intent against the release's current phase and stages
// and appends it, with a history entry. Errors wrap ErrInvalid (malformed)
// or ErrConflict (not allowed now) and say why in words a person can act on.
func (r *Release) Record(in Intent) error {
	if err := in.validate(); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := r.allows(in); err != nil {
		return fmt.Errorf("%s release %s: %w", in, r.ID, err)
	}
	in.Seq = r.lastSeq() + 1
	in.Done, in.Outcome = time.Time{}, ""
	r.appendIntent(in)
	return nil
}

func (in Intent) validate() error {
	switch in.Kind {
	case IntentContinue, IntentPause, IntentPromoteFull, IntentRollback, IntentAbort:
	case IntentOverrideFreeze:
		if strings.TrimSpace(in.Comment) == "" {
			return fmt.Errorf("%w: overriding a freeze needs a reason", ErrInvalid)
		}
	case IntentPromote:
		if in.Percent < 1 || in.Percent > 100 {
			return fmt.Errorf("%w: percent %d is not in 1..100", ErrInvalid, in.Percent)
		}
	default:
		return fmt.Errorf("%w: unknown intent %q", ErrInvalid, in.Kind)
	}
	if strings.TrimSpace(in.Actor) == "" {
		return fmt.Errorf("%w: no actor", ErrInvalid)
	}
	if !slices.Contains(surfaces, in.Surface) {
		return fmt.Errorf("%w: unknown surface %q", ErrInvalid, in.Surface)
	}
	if in.At.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalid)
	}
	return nil
}

// allows says whether the release, as it is now, can act on in.
func (r *Release) allows(in Intent) error {
	if r.Phase.Terminal() {
		return fmt.Errorf("%w: it has already ended (%s)", ErrConflict, r.Phase)
	}
	if in.Drawn != 0 && in.Drawn != r.Stage+1 {
		return fmt.Errorf("%w: it was asked of stage %d, and the release has moved to stage %d since; look at it again", ErrConflict, in.Drawn, r.Stage+1)
	}
	switch in.Kind {
	case IntentContinue:
		if r.Phase != Paused {
			return fmt.Errorf("%w: it is %s, not paused; continue only resumes a paused release", ErrConflict, strings.ToLower(string(r.Phase)))
		}
	case IntentPause:
		if r.Phase == Pending && r.queued() {
			return fmt.Errorf("%w: it is queued and has not started; abort it to take it out of the queue", ErrConflict)
		}
		if r.Phase == Paused || r.Phase == RollingBack {
			return fmt.Errorf("%w: it is already %s", ErrConflict, strings.ToLower(string(r.Phase)))
		}
	case IntentPromote, IntentPromoteFull:
		_, _, err := r.promoteStage(in)
		return err
	case IntentOverrideFreeze:
		if r.Override != nil {
			return fmt.Errorf("%w: %s already overrode freezes for it: %s", ErrConflict, r.Override.By, r.Override.Reason)
		}
	case IntentRollback:
		if r.Phase == RollingBack {
			return fmt.Errorf("%w: it is already rolling back", ErrConflict)
		}
		switch {
		case r.ResolveFrom:
			return fmt.Errorf("%w: it has not started, so there is nothing to roll back; abort it instead", ErrConflict)
		case r.From.IsZero():
			return fmt.Errorf("%w: a first release has no previous revision to roll back to; abort it instead", ErrConflict)
		}
	}
	return nil
}

// promoteStage finds the stage a promote intent jumps to. With AnyWeight,
// a percent no stage has gets a stage of its own, inserted at k (add).
func (r *Release) promoteStage(in Intent) (k int, add bool, err error) {
	if r.Phase == RollingBack {
		return 0, false, fmt.Errorf("%w: it is rolling back", ErrConflict)
	}
	k = len(r.Stages) - 1
	if in.Kind == IntentPromote {
		k = slices.IndexFunc(r.Stages, func(s Stage) bool { return !s.Routes() && s.Target == in.Percent })
	}
	if k < 0 && !r.AnyWeight {
		return 0, false, fmt.Errorf("%w: %d %% is not one of the steps; allowed: %s %% (any ratio needs release.anyWeight: true in the environment)",
			ErrInvalid, in.Percent, joinTargets(r.allowedTargets()))
	}
	if k < 0 {
		// Before the first stage that goes further, after any routing
		// stage that keeps a lower weight.
		k, add = slices.IndexFunc(r.Stages, func(s Stage) bool { return s.Target > in.Percent }), true
	}
	switch {
	case k < r.Stage:
		return 0, false, fmt.Errorf("%w: it is already past %d %%", ErrConflict, in.Percent)
	case k == r.Stage && r.Phase != Paused && r.Phase != Pending:
		return 0, false, fmt.Errorf("%w: stage %d/%d (%s) is already in progress", ErrConflict, k+1, len(r.Stages), r.Stages[k].Label())
	}
	return k, add, nil
}

// allowedTargets are the weights a promote may still name: those of the
// current stage, if it has not started, and of the stages after it.
func (r *Release) allowedTargets() []int {
	from := r.Stage
	if r.Phase != Paused && r.Phase != Pending {
		from++
	}
	var out []int
	for i := from; i < len(r.Stages); i++ {
		if !r.Stages[i].Routes() {
			out = append(out, r.Stages[i].Target)
		}
	}
	return out
}

// insertStage adds a stage at percent before stage k, for a promote to a
// percent no stage had: it waits for approval once in effect, and has the
// gates of the stage it comes before. Checks of later stages move with them.
func (r *Release) insertStage(k, percent int) {
	next := r.Stages[k]
	r.Stages = slices.Insert(r.Stages, k, Stage{Target: percent, Continue: Manual, Before: next.Before, After: next.After})
	for i := range r.Checks {
		if r.Checks[i].Stage >= k {
			r.Checks[i].Stage++
		}
	}
}

func joinTargets(ts []int) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = strconv.Itoa(t)
	}
	return strings.Join(s, ", ")
}

func (r *Release) lastSeq() int {
	if len(r.Intents) == 0 {
		return 0
	}
	return r.Intents[len(r.Intents)-1].Seq
}

func (r *Release) appendIntent(in Intent) {
	r.Intents = append(r.Intents, in)
	msg := in.String() + " requested"
	if in.Comment != "" {
		msg += ": " + in.Comment
	}
	r.History = append(r.History, Entry{
		At: in.At, Actor: in.Actor, Surface: in.Surface, Kind: EntryIntent,
		Phase: r.Phase, Stage: r.Stage, Message: msg,
	})
}

// mergeIntents appends the intents recorded in stored after r was read, so
// that saving r never loses an intent recorded while a step was running.
func (r *Release) mergeIntents(stored []Intent) {
	last := r.lastSeq()
	for _, in := range stored {
		if in.Seq > last {
			r.appendIntent(in)
		}
	}
}

// pendingIntents are the intents the engine has not acted on yet, oldest first.
func (r *Release) pendingIntents() []*Intent {
	var out []*Intent
	for i := range r.Intents {
		if r.Intents[i].Done.IsZero() {
			out = append(out, &r.Intents[i])
		}
	}
	return out
}

// apply acts on one intent: it changes the stage and phase, never the
// cluster. The engine's next actions carry the change out.
func (r *Release) apply(in *Intent) error {
	if err := r.allows(*in); err != nil {
		return err
	}
	r.by, r.via = in.Actor, in.Surface
	defer func() { r.by, r.via = "", "" }()
	why := fmt.Sprintf("%s by %s via %s", in, in.Actor, in.Surface)
	switch in.Kind {
	case IntentContinue:
		r.dropRunningChecks()
		return r.Transition(Progressing, why)
	case IntentPause:
		r.dropRunningChecks()
		return r.Transition(Paused, why)
	case IntentPromote, IntentPromoteFull:
		k, add, _ := r.promoteStage(*in)
		if add {
			r.insertStage(k, in.Percent)
		}
		r.Stage = k
		r.dropRunningChecks()
		if r.Phase == Progressing {
			r.note(EntryTransition, why)
			return nil
		}
		return r.Transition(Progressing, why)
	case IntentRollback:
		r.Reason = why
		return r.Transition(RollingBack, why)
	case IntentAbort:
		r.Reason = why
		return r.Transition(Aborted, why)
	case IntentOverrideFreeze:
		r.applyOverride(in)
		return nil
	}
	return fmt.Errorf("%w: unknown intent %q", ErrInvalid, in.Kind)
}

// note adds a history entry that changes no phase.
func (r *Release) note(kind EntryKind, msg string) {
	r.History = append(r.History, Entry{At: r.now(), Actor: r.actorOrEngine(), Surface: r.via, Kind: kind, Phase: r.Phase, Stage: r.Stage, Message: msg})
}

package release

import (
	"context"
	"fmt"
	"time"
)

// HoldKind says what holds a release back. Stored as a string.
type HoldKind string

// Hold kinds.
const (
	HoldLock   HoldKind = "lock"   // the environment is locked by someone else
	HoldFreeze HoldKind = "freeze" // the environment is frozen
)

// Reasons for holds.
const (
	ReasonHeld           Reason = "Held"           // a lock or freeze keeps a release from starting or moving to its next stage
	ReasonReleased       Reason = "Released"       // the lock or freeze that held a release has ended
	ReasonFreezeOverride Reason = "FreezeOverride" // a person released into a freeze on purpose
)

// IntentOverrideFreeze lets a release start and move on through freezes;
// its Comment says why and is required.
const IntentOverrideFreeze IntentKind = "override-freeze"

// Hold is what keeps a release from starting, or from moving on to its
// next stage, now. It is kept on the release so that every surface can say
// "frozen until …" from the release alone.
type Hold struct {
	Kind    HoldKind  `json:"kind"`
	Message string    `json:"message"`        // e.g. "frozen until 2026-03-02 08:00 UTC (shipbot.yaml: weekend)"
	Until   time.Time `json:"until,omitzero"` // a freeze's end, when known; zero for a lock
	Since   time.Time `json:"since"`
}

// Override is a person's decision to release through freezes.
type Override struct {
	By     string    `json:"by"`
	Via    Surface   `json:"via"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// HoldPoll bounds how long a held release waits before it looks again: a
// lock has no end time, and a GitLab freeze period can change.
const HoldPoll = 30 * time.Second

// holdOf says what holds r now, if anything: a lock someone else holds,
// then a freeze the release has no override for.
func (e *Stepper) holdOf(ctx context.Context, r *Release) (*Hold, error) {
	now := e.clock.Now()
	l, locked, err := e.EnvironmentLock(ctx, r.Environment)
	if err != nil {
		return nil, err
	}
	if locked && !r.drivenBy(l) {
		return &Hold{Kind: HoldLock, Message: l.String(), Since: now}, nil
	}
	if e.freezes == nil || r.Override != nil {
		return nil, nil
	}
	f, frozen, err := e.freezes.Frozen(ctx, *r, now)
	if err != nil {
		return nil, fmt.Errorf("read freezes of %s: %w", r.Environment, err)
	}
	if !frozen {
		return nil, nil
	}
	return &Hold{Kind: HoldFreeze, Message: f.String(), Until: f.Until, Since: now}, nil
}

// drivenBy reports whether the lock's holder drives r: they started it, or
// asked for something on it since they took the lock.
func (r *Release) drivenBy(l Lock) bool {
	if sameUser(l.Holder)(r.TriggeredBy) {
		return true
	}
	for _, in := range r.Intents {
		if sameUser(l.Holder)(in.Actor) && !in.At.Before(l.At) {
			return true
		}
	}
	return false
}

// held checks for a hold before the release starts or moves on to a new
// stage. It returns a Result to wait with while held, noting the hold once
// and when it ends, and nil when the release may go on.
func (s *stepper) held(ctx context.Context) (*Result, error) {
	r := s.r
	h, err := s.e.holdOf(ctx, r)
	if err != nil {
		return nil, err
	}
	if h == nil {
		if r.Hold != nil {
			was := r.Hold.Message
			r.Hold = nil
			s.e.emit(ctx, r, ReasonReleased, "no longer held: "+was)
			return nil, s.save(ctx, "released")
		}
		return nil, nil
	}
	wait := HoldPoll
	if !h.Until.IsZero() {
		wait = min(wait, max(h.Until.Sub(s.e.clock.Now()), time.Second))
	}
	if r.Hold != nil && r.Hold.Message == h.Message {
		return s.wait(wait), nil
	}
	if r.Hold != nil {
		h.Since = r.Hold.Since
	}
	r.Hold = h
	s.e.emit(ctx, r, ReasonHeld, h.Message)
	return s.wait(wait), s.save(ctx, "held")
}

// applyOverride keeps a freeze override on the release; the engine then
// releases it through freezes. The intent's history entry and the event
// applyIntents emits are its audit.
func (r *Release) applyOverride(in *Intent) {
	r.Override = &Override{By: in.Actor, Via: in.Surface, Reason: in.Comment, At: in.At}
}

// emitOverride reports an override as the person's, not the engine's: the
// audit names who released into a freeze.
func (s *stepper) emitOverride(ctx context.Context, in *Intent) {
	s.r.by, s.r.via = in.Actor, in.Surface
	defer func() { s.r.by, s.r.via = "", "" }()
	s.e.emit(ctx, s.r, ReasonFreezeOverride, fmt.Sprintf("freeze overridden by %s via %s: %s", in.Actor, in.Surface, in.Comment))
}

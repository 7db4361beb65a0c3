package release

import (
	"context"
	"time"
)

// Reason names what happened to a release. Reasons are stored and sent as strings.
type Reason string

// Reasons the engine reports.
const (
	ReasonStageStarted   Reason = "StageStarted"   // a stage began moving traffic or replicas
	ReasonStageCompleted Reason = "StageCompleted" // a stage's target is in effect and its gates passed
	ReasonPaused         Reason = "Paused"         // waiting for approval, or paused by a person or a gate
	ReasonWaitingForGate Reason = "WaitingForGate" // a gate is pending or still evaluating
	ReasonGatePassed     Reason = "GatePassed"
	ReasonGateFailed     Reason = "GateFailed"
	ReasonNotReady       Reason = "NotReady" // pods missed the progress deadline; the message has pod-level reasons
	ReasonRollingBack    Reason = "RollingBack"
	ReasonRolledBack     Reason = "RolledBack"
	ReasonSucceeded      Reason = "Succeeded"
	ReasonFailed         Reason = "Failed"
	ReasonAborted        Reason = "Aborted"
	ReasonIntentRejected Reason = "IntentRejected" // an intent recorded earlier no longer applied when the engine read it
)

// Event is something that happened to a release, for notifiers and the audit trail.
type Event struct {
	// ID names the event once: it is the same on every retry and after a
	// restart, so a notifier that remembers what it sent can drop a repeat.
	ID      string
	Reason  Reason
	Release Release // a copy, as it was when the event happened
	Summary string  // Describe(Release) at the time
	Message string
	At      time.Time
}

// Notifier receives release events: chat, MR comments and outgoing webhooks
// implement it in the bot layer.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, e Event) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, e Event) error { return f(ctx, e) }

var _ Notifier = NotifierFunc(nil)

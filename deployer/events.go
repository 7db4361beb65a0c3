package deployer

import (
	"context"

	"github.com/shipbot/shipbot/deployer/store"
)

// Reason names what happened. Reasons are stored and sent as strings.
type Reason string

// Reasons the engine reports.
const (
	ReasonDeployStarted    Reason = "DeployStarted"
	ReasonDeploySucceeded  Reason = "DeploySucceeded"
	ReasonDeployFailed     Reason = "DeployFailed"
	ReasonDeploySuperseded Reason = "DeploySuperseded"
	ReasonPreviewDeploying Reason = "PreviewDeploying"
	ReasonPreviewReady     Reason = "PreviewReady"
	ReasonPreviewFailed    Reason = "PreviewFailed"
	ReasonPreviewStopped   Reason = "PreviewStopped"
	// ReasonPreviewStale ends a preview deploy that went stale on the way:
	// the head moved on or the preview was stopped. The event's Deployment
	// is the stale one, its Preview the record as it is now.
	ReasonPreviewStale Reason = "PreviewStale"
)

// Event is something the engine did, for notifiers and the audit trail.
type Event struct {
	Reason     Reason
	Deployment store.Deployment
	Preview    *store.Preview // set for preview events
	Message    string
}

// Notifier receives engine events. The bot layer implements it (chat, MR
// comments, outgoing webhooks); deployer never imports bot.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, e Event) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, e Event) error { return f(ctx, e) }

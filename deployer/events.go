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
	// ReasonConfigRefused blocks a build: its commit's .shipbot.yaml breaks
	// the project's policy, fails validation or cannot be read, so nothing
	// of it is deployed. The event's Deployment names the build (it has no
	// ID), its Message the file, line and reason of each problem.
	ReasonConfigRefused Reason = "ConfigRefused"
)

// Event is something the engine did, for notifiers and the audit trail.
type Event struct {
	Reason     Reason
	Deployment store.Deployment
	Preview    *store.Preview // set for preview events
	Message    string
	// MergeRequest is the IID of the merge request whose pipeline the
	// build is, for ReasonConfigRefused; 0 for a branch or tag build.
	MergeRequest int64
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

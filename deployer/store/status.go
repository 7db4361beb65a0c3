package store

import (
	"errors"
	"fmt"
	"slices"
)

// ErrTransition marks a status change its transition table does not allow.
// Only the engine changes these statuses, so one is a bug, never a request.
var ErrTransition = errors.New("transition not allowed")

// deploymentTransitions is the one table of deployment statuses;
// Deployment.Transition, the only writer of Deployment.Status, enforces it.
// A deployment is created pending. A pending one is superseded when a newer
// deployment of its target, or a newer head of its preview, wins before it
// starts; a running one, when that happens while it runs (or was running
// when shipbot stopped).
var deploymentTransitions = map[Status][]Status{
	StatusPending:    {StatusRunning, StatusSuperseded},
	StatusRunning:    {StatusSucceeded, StatusFailed, StatusSuperseded},
	StatusSucceeded:  nil,
	StatusFailed:     nil,
	StatusSuperseded: nil,
}

// Active reports whether the deployment still has work to do: pending and
// running deployments are resumed after a restart.
func (s Status) Active() bool { return len(deploymentTransitions[s]) > 0 }

// Transition moves d to status to. It fails with ErrTransition when the table
// does not allow the move, and leaves d as it was.
func (d *Deployment) Transition(to Status) error {
	if !slices.Contains(deploymentTransitions[d.Status], to) {
		return fmt.Errorf("deployment %s: %s → %s: %w", d.ID, d.Status, to, ErrTransition)
	}
	d.Status = to
	return nil
}

// previewTransitions is the one table of preview statuses;
// Preview.Transition, the only writer of Preview.Status, enforces it.
// A preview is created waiting. Each app of the merge request's project
// deploys on its own, and the last to start or end sets the status, so
// deploying, ready and failed follow one another in any order. Anything
// not yet stopped can be torn down, and a teardown that is retried, or that
// races a redeploy of the same preview, can meet a preview already stopping.
// A stopped preview only comes back through waiting, when it is redeployed.
var previewTransitions = map[PreviewStatus][]PreviewStatus{
	PreviewWaiting:   {PreviewDeploying, PreviewReady, PreviewFailed, PreviewStopping},
	PreviewDeploying: {PreviewDeploying, PreviewReady, PreviewFailed, PreviewWaiting, PreviewStopping},
	PreviewReady:     {PreviewDeploying, PreviewReady, PreviewFailed, PreviewStopping},
	PreviewFailed:    {PreviewDeploying, PreviewReady, PreviewFailed, PreviewStopping},
	PreviewStopping:  {PreviewStopping, PreviewStopped, PreviewWaiting, PreviewDeploying, PreviewReady, PreviewFailed},
	PreviewStopped:   {PreviewWaiting, PreviewStopping},
}

// Transition moves p to status to. It fails with ErrTransition when the table
// does not allow the move, and leaves p as it was.
func (p *Preview) Transition(to PreviewStatus) error {
	if !slices.Contains(previewTransitions[p.Status], to) {
		return fmt.Errorf("preview %s: %s → %s: %w", p.Key, p.Status, to, ErrTransition)
	}
	p.Status = to
	return nil
}

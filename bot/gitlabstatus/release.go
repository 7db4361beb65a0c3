package gitlabstatus

import (
	"context"
	"fmt"
	"slices"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/release"
)

var _ release.Notifier = (*Tracer)(nil)

// Notify records a staged release's event in GitLab: the shipbot/<env>
// status of the released commit and, once the release has started, a
// deployment record on the environment, closed when the release ends.
func (t *Tracer) Notify(ctx context.Context, e release.Event) error {
	r := e.Release
	if r.To.SHA == "" || r.Project == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	pid, err := t.projectID(ctx, r.Project, 0)
	if err != nil {
		return fmt.Errorf("trace release %s: %w", r.ID, err)
	}
	state, desc := ReleaseStatus(e)
	rec := record{
		projectID: pid, key: "release/" + r.ID, app: r.App, env: r.Environment, cluster: r.Cluster,
		ref: r.To.Ref, sha: r.To.SHA, tag: true, host: r.Params.Host,
		started: started(r), deployment: releaseDeployment(r.Phase),
		state: state, desc: desc, targetURL: t.releaseURL(r),
	}
	wrote, err := t.trace(ctx, rec)
	if err != nil {
		return fmt.Errorf("trace release %s: %w", r.ID, err)
	}
	if !wrote {
		return release.ErrUnchanged
	}
	return nil
}

// releaseURL is the release's page on shipbot's dashboard, else its pipeline.
func (t *Tracer) releaseURL(r release.Release) string {
	switch {
	case t.publicURL != "" && r.ID != "":
		return t.publicURL + "/releases/" + r.ID
	case r.WebURL != "":
		return r.WebURL
	}
	return t.pipelineURL(r.Project, r.PipelineID)
}

// started reports whether the release ever began to move traffic or
// replicas; one that ended while queued never touched the environment.
func started(r release.Release) bool {
	return slices.ContainsFunc(r.History, func(e release.Entry) bool {
		return e.Kind == release.EntryTransition && e.Phase == release.Progressing
	})
}

// releaseDeployment is the GitLab deployment status of a release in phase p.
func releaseDeployment(p release.Phase) string {
	switch p {
	case release.Succeeded:
		return gitlab.DeploymentSuccess
	case release.RolledBack, release.Failed:
		return gitlab.DeploymentFailed
	case release.Aborted:
		return gitlab.DeploymentCanceled
	}
	return gitlab.DeploymentRunning
}

// ReleaseStatus derives the commit status state and description of a
// release event, e.g. running, "stage 2/3: 50% of traffic, paused for
// approval". Unlike release.Describe it leaves out durations and gate run
// counts, so the description changes only when the release does, and so
// does the status.
func ReleaseStatus(e release.Event) (state, description string) {
	r := e.Release
	n := len(r.Stages)
	at := fmt.Sprintf("stage %d/%d", min(r.Stage+1, n), n)
	share := fmt.Sprintf("%d%% %s", r.Percent, unit(r.Strategy))
	running := gitlab.StateRunning
	if !started(r) {
		running = gitlab.StatePending
	}
	if r.Hold != nil && !r.Phase.Terminal() {
		// A lock or freeze says why nothing moves, e.g. "frozen until …".
		return running, fmt.Sprintf("%s: held, %s", at, r.Hold.Message)
	}
	switch r.Phase {
	case release.Pending:
		if e.Reason == release.ReasonQueued && e.Message != "" {
			return gitlab.StatePending, "queued: " + e.Message
		}
		return gitlab.StatePending, "waiting to start"
	case release.Progressing:
		if r.Stage >= n {
			return running, fmt.Sprintf("stage %d/%d: %s, finishing", n, n, share)
		}
		if c := runningCheck(r); c != nil && c.When == release.Before {
			return running, fmt.Sprintf("%s: %s, gate %s before moving to %d%%", at, share, c.Gate, r.Target())
		}
		if st := r.Stages[r.Stage]; st.Routes() {
			return running, fmt.Sprintf("%s: %s, setting %s", at, share, st.Label())
		}
		return running, fmt.Sprintf("%s: moving to %d%% %s", at, r.Target(), unit(r.Strategy))
	case release.Verifying:
		if c := runningCheck(r); c != nil && c.When == release.After {
			return running, fmt.Sprintf("%s: %s, verifying gate %s", at, share, c.Gate)
		}
		return running, fmt.Sprintf("%s: %s, verifying", at, share)
	case release.Paused:
		return running, paused(r, share)
	case release.RollingBack:
		return running, fmt.Sprintf("%s: rolling back to %s%s", at, revName(r.From), because(r.Reason))
	case release.Succeeded:
		return gitlab.StateSuccess, fmt.Sprintf("%s serves 100%% %s", r.To.Name, unit(r.Strategy))
	case release.RolledBack:
		return gitlab.StateFailed, fmt.Sprintf("rolled back to %s at %s%s", revName(r.From), at, because(r.Reason))
	case release.Failed:
		return gitlab.StateFailed, "failed at " + at + because(r.Reason)
	case release.Aborted:
		return gitlab.StateCanceled, "aborted at " + at + because(r.Reason)
	}
	return running, fmt.Sprintf("%s: %s, %s", at, share, r.Phase)
}

// paused says why a release waits: a failed gate, a person, or a manual
// stage. After a manual stage Stage already points at the next one, so the
// stage named is the one just done.
func paused(r release.Release, share string) string {
	n := len(r.Stages)
	at := fmt.Sprintf("stage %d/%d", min(r.Stage+1, n), n)
	for _, c := range r.Checks {
		if c.Stage == r.Stage && c.Status == release.CheckFailed {
			return fmt.Sprintf("%s: %s, paused: gate %s failed", at, share, c.Gate)
		}
	}
	for _, h := range slices.Backward(r.History) {
		if h.Kind == release.EntryTransition && h.Phase == release.Paused {
			if h.Actor != release.EngineActor && h.Actor != "" {
				return fmt.Sprintf("%s: %s, paused by %s", at, share, h.Actor)
			}
			break
		}
	}
	return fmt.Sprintf("stage %d/%d: %s, paused for approval", min(max(r.Stage, 1), n), n, share)
}

func runningCheck(r release.Release) *release.Check {
	for i := range r.Checks {
		if c := &r.Checks[i]; c.Stage == r.Stage && c.Status == release.CheckRunning {
			return c
		}
	}
	return nil
}

// unit is what a strategy's percentages are of.
func unit(s release.Strategy) string {
	if s == release.Canary || s == release.BlueGreen {
		return "of traffic"
	}
	return "of replicas"
}

func revName(v release.Revision) string {
	if v.IsZero() {
		return "nothing"
	}
	return v.Name
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

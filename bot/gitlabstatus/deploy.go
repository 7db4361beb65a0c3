package gitlabstatus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer"
)

// Deploys wraps next, the engine's notifier (the merge request notifier, or
// nil), so that plain deploys are recorded in GitLab too. Every event goes
// to next first; preview events go only there, since next already keeps
// their review environments.
func (t *Tracer) Deploys(next deployer.Notifier) deployer.Notifier {
	return deploys{t: t, next: next}
}

type deploys struct {
	t    *Tracer
	next deployer.Notifier
}

var _ deployer.Notifier = deploys{}

// Notify hands the event to next, then records plain deploys.
func (d deploys) Notify(ctx context.Context, e deployer.Event) error {
	var errs []error
	if d.next != nil {
		errs = append(errs, d.next.Notify(ctx, e))
	}
	if e.Reason == deployer.ReasonConfigRefused {
		return errors.Join(append(errs, d.t.refused(ctx, e))...)
	}
	return errors.Join(append(errs, d.t.deploy(ctx, e))...)
}

// ConfigStatus is the commit status that fails a commit whose .shipbot.yaml
// is refused.
const ConfigStatus = "shipbot/config"

// refused fails the commit's shipbot/config status with the first problem
// of its .shipbot.yaml; GitLab keeps a status's description short, and the
// merge request comment and chat carry them all.
func (t *Tracer) refused(ctx context.Context, e deployer.Event) error {
	d := e.Deployment
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	id, err := t.projectID(ctx, d.Project, d.ProjectID)
	if err == nil {
		first, _, _ := strings.Cut(e.Message, "\n")
		err = t.api.SetCommitStatus(ctx, id, d.SHA, ConfigStatus, gitlab.StateFailed, t.pipelineURL(d.Project, d.PipelineID), truncate("not deployed: "+first))
	}
	if err != nil {
		return fmt.Errorf("commit status of refused %s at %s: %w", d.Project, d.SHA, err)
	}
	return nil
}

// deploy records a plain deploy: the shipbot/<env> status goes running when
// it starts and to its outcome at the end, and so does its deployment record.
func (t *Tracer) deploy(ctx context.Context, e deployer.Event) error {
	d := e.Deployment
	if e.Preview != nil || d.Preview != "" || d.ID == "" || d.SHA == "" {
		return nil
	}
	rec := record{
		key: "deploy/" + d.ID, app: d.App, env: d.Environment, cluster: d.Cluster,
		ref: d.Ref, sha: d.SHA, tag: d.Tag, host: t.host(d.App, d.Environment), started: true,
		targetURL: t.pipelineURL(d.Project, d.PipelineID),
	}
	switch e.Reason {
	case deployer.ReasonDeployStarted:
		rec.state, rec.deployment, rec.desc = gitlab.StateRunning, gitlab.DeploymentRunning, "deploying to "+d.Namespace
	case deployer.ReasonDeploySucceeded:
		rec.state, rec.deployment, rec.desc = gitlab.StateSuccess, gitlab.DeploymentSuccess, "deployed to "+d.Namespace
	case deployer.ReasonDeployFailed:
		rec.state, rec.deployment, rec.desc = gitlab.StateFailed, gitlab.DeploymentFailed, "failed"+because(d.Reason)
	case deployer.ReasonDeploySuperseded:
		if d.Started.IsZero() {
			return nil // it never ran, so GitLab shows nothing of it
		}
		rec.state, rec.deployment, rec.desc = gitlab.StateCanceled, gitlab.DeploymentCanceled, "canceled: "+d.Reason
	default:
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var err error
	if rec.projectID, err = t.projectID(ctx, d.Project, d.ProjectID); err != nil {
		return fmt.Errorf("trace deployment %s: %w", d.ID, err)
	}
	if _, err := t.trace(ctx, rec); err != nil {
		return fmt.Errorf("trace deployment %s: %w", d.ID, err)
	}
	return nil
}

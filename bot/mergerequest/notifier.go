package mergerequest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
)

// GitLab is the part of the GitLab API this package uses.
type GitLab interface {
	CreateMRNote(ctx context.Context, projectID, iid int64, body string) (int64, error)
	UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error
	AwardMRNoteEmoji(ctx context.Context, projectID, iid, noteID int64, emoji string) error
	MRNote(ctx context.Context, projectID, iid, noteID int64) (gitlab.Note, error)
	AccessLevel(ctx context.Context, projectID, userID int64) (gitlab.AccessLevel, error)
	MergeRequest(ctx context.Context, projectID, iid int64) (gitlab.MergeRequest, error)
	MergeRequestsForCommit(ctx context.Context, projectID int64, sha string) ([]gitlab.MergeRequest, error)
	EnsureEnvironment(ctx context.Context, projectID int64, name, externalURL string) (int64, error)
	StopEnvironment(ctx context.Context, projectID, envID int64) error
	CreateDeployment(ctx context.Context, projectID int64, d gitlab.Deployment) (int64, error)
	UpdateDeployment(ctx context.Context, projectID, deploymentID int64, status string) error
}

var _ GitLab = (*gitlab.Client)(nil)

// Notifier keeps each merge request's comment and review environment in step
// with its preview. It implements deployer.Notifier.
type Notifier struct {
	API   GitLab
	Store *store.Store
	Log   *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

var _ deployer.Notifier = (*Notifier)(nil)

// lock serialises updates per merge request, so two events never create two comments.
func (n *Notifier) lock(key string) func() {
	n.mu.Lock()
	if n.locks == nil {
		n.locks = map[string]*sync.Mutex{}
	}
	l := n.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		n.locks[key] = l
	}
	n.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Notify updates GitLab for preview events, comments on the merge
// requests of a build refused for its .shipbot.yaml, and ignores the others.
func (n *Notifier) Notify(ctx context.Context, e deployer.Event) error {
	if e.Reason == deployer.ReasonConfigRefused {
		return n.refused(ctx, e)
	}
	if e.Preview == nil {
		return nil
	}
	defer n.lock(e.Preview.Key)()
	// Re-read: the event's copy may be older than what another event stored.
	p, err := n.Store.Preview(e.Preview.Key)
	if err != nil {
		return err
	}
	errs := []error{n.comment(ctx, &p), n.environment(ctx, &p, e)}
	_, err = n.Store.UpdatePreview(p.Key, func(rec *store.Preview) error {
		rec.NoteID, rec.EnvironmentID = p.NoteID, p.EnvironmentID
		rec.GitLabDeployID, rec.GitLabDeploySHA, rec.GitLabDeployStatus = p.GitLabDeployID, p.GitLabDeploySHA, p.GitLabDeployStatus
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// comment edits the merge request's one shipbot comment, creating it once.
func (n *Notifier) comment(ctx context.Context, p *store.Preview) error {
	body := Comment(*p)
	if p.NoteID != 0 {
		err := n.API.UpdateMRNote(ctx, p.ProjectID, p.IID, p.NoteID, body)
		if !errors.Is(err, gitlab.ErrNotFound) {
			return err
		}
		// Someone deleted the comment: write a new one.
	}
	id, err := n.API.CreateMRNote(ctx, p.ProjectID, p.IID, body)
	if err != nil {
		return err
	}
	p.NoteID = id
	return nil
}

// environment mirrors the preview as GitLab's review/mr-<iid> environment
// and a deployment record per deploy. Every record it opens as running ends
// success, failed or canceled.
func (n *Notifier) environment(ctx context.Context, p *store.Preview, e deployer.Event) error {
	switch e.Reason {
	case deployer.ReasonPreviewDeploying:
		envID, err := n.API.EnsureEnvironment(ctx, p.ProjectID, EnvironmentName(p.IID), "")
		if err != nil {
			return err
		}
		p.EnvironmentID = envID
		if p.GitLabDeploySHA != p.HeadSHA {
			if err := n.closeDeployment(ctx, p, gitlab.DeploymentCanceled); err != nil {
				return err
			}
		}
		id, err := n.API.CreateDeployment(ctx, p.ProjectID, gitlab.Deployment{
			Environment: EnvironmentName(p.IID), Ref: p.SourceBranch, SHA: p.HeadSHA, Status: gitlab.DeploymentRunning,
		})
		if err != nil {
			return err
		}
		p.GitLabDeployID, p.GitLabDeploySHA, p.GitLabDeployStatus = id, p.HeadSHA, gitlab.DeploymentRunning
	case deployer.ReasonPreviewReady:
		envID, err := n.API.EnsureEnvironment(ctx, p.ProjectID, EnvironmentName(p.IID), p.URL)
		if err != nil {
			return err
		}
		p.EnvironmentID = envID
		return n.closeDeployment(ctx, p, gitlab.DeploymentSuccess)
	case deployer.ReasonPreviewFailed:
		return n.closeDeployment(ctx, p, gitlab.DeploymentFailed)
	case deployer.ReasonPreviewStale:
		if p.GitLabDeploySHA == e.Deployment.SHA {
			return n.closeDeployment(ctx, p, gitlab.DeploymentCanceled)
		}
	case deployer.ReasonPreviewStopped:
		if err := n.closeDeployment(ctx, p, gitlab.DeploymentCanceled); err != nil {
			return err
		}
		if p.EnvironmentID != 0 {
			if err := n.API.StopEnvironment(ctx, p.ProjectID, p.EnvironmentID); err != nil && !errors.Is(err, gitlab.ErrNotFound) {
				return fmt.Errorf("stop environment: %w", err)
			}
		}
	}
	return nil
}

// closeDeployment moves the preview's GitLab deployment record to status if
// it is still running. Records from before shipbot kept their status (empty)
// are closed only with an outcome, since canceling would overwrite one.
func (n *Notifier) closeDeployment(ctx context.Context, p *store.Preview, status string) error {
	open := p.GitLabDeployStatus == gitlab.DeploymentRunning ||
		(p.GitLabDeployStatus == "" && status != gitlab.DeploymentCanceled)
	if p.GitLabDeployID == 0 || !open {
		return nil
	}
	if err := n.API.UpdateDeployment(ctx, p.ProjectID, p.GitLabDeployID, status); err != nil {
		return err
	}
	p.GitLabDeployStatus = status
	return nil
}

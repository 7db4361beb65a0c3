package govern

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/release"
)

// ApprovalReader is what MRApprovals asks of GitLab; *gitlab.Client has it.
type ApprovalReader interface {
	ProjectID(ctx context.Context, path string) (int64, error)
	MergeRequestsForCommit(ctx context.Context, projectID int64, sha string) ([]gitlab.MergeRequest, error)
	MergeRequestApprovers(ctx context.Context, projectID, iid int64) ([]string, error)
}

var _ ApprovalReader = (*gitlab.Client)(nil)

// MRApprovals implements release.MergeRequestApprovals: the merge request
// that produced a release's commit, preferring a merged one, and who
// approved it in GitLab.
type MRApprovals struct{ GitLab ApprovalReader }

var _ release.MergeRequestApprovals = MRApprovals{}

// MergeRequestApprovals answers for r's build; release.ErrNoMergeRequest
// when GitLab knows no merge request for its commit.
func (m MRApprovals) MergeRequestApprovals(ctx context.Context, r release.Release) (release.MRApproval, error) {
	pid, err := m.GitLab.ProjectID(ctx, r.Project)
	if err != nil {
		return release.MRApproval{}, fmt.Errorf("approvals for %s: %w", r.ID, err)
	}
	mrs, err := m.GitLab.MergeRequestsForCommit(ctx, pid, r.To.SHA)
	if err != nil && !errors.Is(err, gitlab.ErrNotFound) {
		return release.MRApproval{}, fmt.Errorf("approvals for %s: %w", r.ID, err)
	}
	if len(mrs) == 0 {
		return release.MRApproval{}, release.ErrNoMergeRequest
	}
	// The merge that made the commit, when there is one: an open merge
	// request that merely contains it did not produce this build.
	mr := mrs[0]
	if i := slices.IndexFunc(mrs, func(m gitlab.MergeRequest) bool { return m.State == "merged" }); i >= 0 {
		mr = mrs[i]
	}
	by, err := m.GitLab.MergeRequestApprovers(ctx, pid, mr.IID)
	if err != nil {
		return release.MRApproval{}, fmt.Errorf("approvals for %s: %w", r.ID, err)
	}
	return release.MRApproval{IID: mr.IID, Approvers: by}, nil
}

package gitlab

import (
	"context"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// MergeRequest fetches one merge request; it wraps ErrNotFound once the MR is deleted.
func (c *Client) MergeRequest(ctx context.Context, projectID, iid int64) (MergeRequest, error) {
	m, _, err := c.gl.MergeRequests.GetMergeRequest(projectID, iid, nil, gl.WithContext(ctx))
	if err != nil {
		return MergeRequest{}, wrap(err, "get project %d MR !%d", projectID, iid)
	}
	mr := fromBasic(&m.BasicMergeRequest)
	if mr.HeadSHA == "" {
		mr.HeadSHA = m.DiffRefs.HeadSha
	}
	return mr, nil
}

// MergeRequestsForCommit lists the merge requests of the project that contain the commit.
func (c *Client) MergeRequestsForCommit(ctx context.Context, projectID int64, sha string) ([]MergeRequest, error) {
	var out []MergeRequest
	reqOpts := []gl.RequestOptionFunc{gl.WithContext(ctx)}
	for range maxPages {
		mrs, resp, err := c.gl.Commits.ListMergeRequestsByCommit(projectID, sha, reqOpts...)
		if err != nil {
			return nil, wrap(err, "merge requests of commit %s in project %d", sha, projectID)
		}
		for _, m := range mrs {
			out = append(out, fromBasic(m))
		}
		next, ok := gl.WithNext(resp)
		if !ok {
			break
		}
		reqOpts = []gl.RequestOptionFunc{gl.WithContext(ctx), next}
	}
	return out, nil
}

func fromBasic(m *gl.BasicMergeRequest) MergeRequest {
	mr := MergeRequest{
		ProjectID:       m.ProjectID,
		IID:             m.IID,
		Title:           m.Title,
		State:           m.State,
		SourceBranch:    m.SourceBranch,
		TargetBranch:    m.TargetBranch,
		HeadSHA:         m.SHA,
		WebURL:          m.WebURL,
		MergeCommitSHA:  m.MergeCommitSHA,
		SquashCommitSHA: m.SquashCommitSHA,
		UpdatedAt:       derefTime(m.UpdatedAt),
	}
	if len(m.Labels) > 0 {
		mr.Labels = append([]string(nil), m.Labels...)
	}
	return mr
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// MergeRequestApprovers lists who has approved a merge request, in the
// order GitLab gives.
func (c *Client) MergeRequestApprovers(ctx context.Context, projectID, iid int64) ([]string, error) {
	a, _, err := c.gl.MergeRequestApprovals.GetConfiguration(projectID, iid, gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(err, "approvals of merge request !%d in project %d", iid, projectID)
	}
	var out []string
	for _, u := range a.ApprovedBy {
		if u != nil && u.User != nil {
			out = append(out, u.User.Username)
		}
	}
	return out, nil
}

package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Build is a commit CI built, as `/deploy` finds it.
type Build struct {
	SHA        string
	Ref        string // the tag when the ref named one; empty for a bare commit
	Tag        bool
	PipelineID int64
}

// ErrNoSuccessfulPipeline marks a commit no pipeline has passed for.
var ErrNoSuccessfulPipeline = errors.New("no successful pipeline")

// FindBuild resolves ref, a tag or a commit, to its commit, and finds the
// newest pipeline that succeeded for it. Only a built commit has an image.
func (c *Client) FindBuild(ctx context.Context, projectID int64, ref string) (Build, error) {
	b, err := c.resolveRef(ctx, projectID, ref)
	if err != nil {
		return Build{}, err
	}
	opt := &gl.ListProjectPipelinesOptions{SHA: gl.Ptr(b.SHA), Status: gl.Ptr(gl.Success), ListOptions: gl.ListOptions{PerPage: 1}}
	pls, _, err := c.gl.Pipelines.ListProjectPipelines(projectID, opt, gl.WithContext(ctx))
	if err != nil {
		return Build{}, wrap(err, "pipelines of %s in project %d", b.SHA, projectID)
	}
	if len(pls) == 0 {
		return Build{}, fmt.Errorf("%s (%s): %w", ref, b.SHA[:min(8, len(b.SHA))], ErrNoSuccessfulPipeline)
	}
	b.PipelineID = pls[0].ID
	return b, nil
}

// resolveRef reads ref as a tag first, then as a commit.
func (c *Client) resolveRef(ctx context.Context, projectID int64, ref string) (Build, error) {
	tag, _, err := c.gl.Tags.GetTag(projectID, ref, gl.WithContext(ctx))
	switch {
	case err == nil && tag.Commit != nil:
		return Build{SHA: tag.Commit.ID, Ref: ref, Tag: true}, nil
	case err != nil && !errors.Is(err, gl.ErrNotFound):
		return Build{}, wrap(err, "tag %q in project %d", ref, projectID)
	}
	commit, _, err := c.gl.Commits.GetCommit(projectID, ref, nil, gl.WithContext(ctx))
	if err != nil {
		return Build{}, wrap(err, "no tag or commit %q in project %d", ref, projectID)
	}
	return Build{SHA: commit.ID}, nil
}

package mergerequest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/deployer"
)

// refused comments on the merge request whose pipeline was refused, or on
// every open merge request with the commit at its head, so the person who
// wrote the .shipbot.yaml reads why nothing deployed where they look.
func (n *Notifier) refused(ctx context.Context, e deployer.Event) error {
	d := e.Deployment
	iids := []int64{}
	if e.MergeRequest != 0 {
		iids = append(iids, e.MergeRequest)
	} else {
		mrs, err := n.API.MergeRequestsForCommit(ctx, d.ProjectID, d.SHA)
		if err != nil {
			return fmt.Errorf("merge requests of refused %s: %w", d.SHA, err)
		}
		for _, mr := range mrs {
			if mr.State == "opened" && mr.HeadSHA == d.SHA {
				iids = append(iids, mr.IID)
			}
		}
	}
	var errs []error
	for _, iid := range iids {
		if _, err := n.API.CreateMRNote(ctx, d.ProjectID, iid, RefusedComment(e)); err != nil {
			errs = append(errs, fmt.Errorf("comment on !%d: %w", iid, err))
		}
	}
	return errors.Join(errs...)
}

// RefusedComment is the merge request comment for a build refused for its
// .shipbot.yaml: which build, that nothing was applied, and every problem
// with its file and line.
func RefusedComment(e deployer.Event) string {
	d := e.Deployment
	var b strings.Builder
	fmt.Fprintf(&b, ":no_entry: **Not deployed**: %s at `%s`", markup.Code(d.Ref), d.SHA[:min(len(d.SHA), 8)])
	if d.PipelineID != 0 {
		fmt.Fprintf(&b, " (pipeline #%d)", d.PipelineID)
	}
	fmt.Fprintf(&b, ": its `.shipbot.yaml` stops it, and nothing was applied.\n\n%s\n\n", markup.Block(e.Message))
	b.WriteString("Fix the file and push again. What a repository may set is shipbot's config's `projects` (environments, allowedOverrides).")
	return b.String()
}

package mergerequest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
)

// PlanGitLab is the part of the GitLab API the planner uses.
type PlanGitLab interface {
	MergeRequest(ctx context.Context, projectID, iid int64) (gitlab.MergeRequest, error)
	CreateMRNote(ctx context.Context, projectID, iid int64, body string) (int64, error)
	UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error
}

// MergePlan works out what merging commit sha of project into target
// would change; deployer.MergePlanner.Plan.
type MergePlan func(ctx context.Context, project, sha, target string) ([]deployer.ClusterDiff, error)

// PlanRequest names the merge request to plan.
type PlanRequest struct {
	ProjectID int64
	Project   string // path with namespace, as the webhook names it
	IID       int64
}

// Planner keeps one comment per merge request saying what merging it
// would deploy, edited in place at each plan. Plans run one at a time,
// in the background, since each asks every cluster for a dry run.
type Planner struct {
	API   PlanGitLab
	Store *store.Store
	Plan  MergePlan
	Log   *slog.Logger

	queue chan PlanRequest
}

// NewPlanner returns a planner with p's collaborators, ready to Run.
func NewPlanner(p Planner) *Planner {
	p.queue = make(chan PlanRequest, 64)
	return &p
}

// Schedule asks for a plan of the merge request's head. It never blocks:
// a full queue drops the request, since the next pipeline or /plan asks again.
func (p *Planner) Schedule(r PlanRequest) bool {
	select {
	case p.queue <- r:
		return true
	default:
		p.Log.Warn("plan queue full; plan dropped", "project", r.ProjectID, "mr", r.IID)
		return false
	}
}

// planTimeout bounds one plan: a download, a render and the dry runs.
const planTimeout = 3 * time.Minute

// Run plans what is scheduled until ctx ends.
func (p *Planner) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-p.queue:
			pctx, cancel := context.WithTimeout(ctx, planTimeout)
			if err := p.run(pctx, r); err != nil {
				p.Log.Warn("plan", "project", r.ProjectID, "mr", r.IID, "err", err)
			}
			cancel()
		}
	}
}

// run reads the merge request's head and target from GitLab, plans the
// merge and writes the comment; a plan that fails says why in the comment.
func (p *Planner) run(ctx context.Context, r PlanRequest) error {
	mr, err := p.API.MergeRequest(ctx, r.ProjectID, r.IID)
	if err != nil {
		return err
	}
	if mr.State != "opened" {
		return nil // merged or closed: nothing left to plan
	}
	diffs, err := p.Plan(ctx, r.Project, mr.HeadSHA, mr.TargetBranch)
	return p.comment(ctx, r, PlanComment(mr, diffs, err))
}

func planNoteKey(r PlanRequest) string { return fmt.Sprintf("mr/plan/%d/%d", r.ProjectID, r.IID) }

// comment edits the merge request's plan comment, creating it once.
func (p *Planner) comment(ctx context.Context, r PlanRequest, body string) error {
	var id int64
	if raw, err := p.Store.Note(planNoteKey(r)); err == nil {
		_ = json.Unmarshal(raw, &id)
	}
	if id != 0 {
		err := p.API.UpdateMRNote(ctx, r.ProjectID, r.IID, id, body)
		if !errors.Is(err, gitlab.ErrNotFound) {
			return err
		}
	}
	id, err := p.API.CreateMRNote(ctx, r.ProjectID, r.IID, body)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(id)
	return p.Store.PutNote(planNoteKey(r), raw)
}

// PlanComment is the plan comment's text: what merging the head into the
// target would change per environment and cluster, or why it cannot say.
func PlanComment(mr gitlab.MergeRequest, diffs []deployer.ClusterDiff, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- shipbot:plan -->\n### shipbot plan\nMerging `%s` into `%s`:\n\n", mr.HeadSHA[:min(len(mr.HeadSHA), 8)], mr.TargetBranch)
	switch {
	case err != nil:
		fmt.Fprintf(&b, "❌ No plan: \n\n%s\n", markup.Block(err.Error()))
	case len(diffs) == 0:
		fmt.Fprintf(&b, "deploys nothing: no app of this project deploys `%s`.\n", mr.TargetBranch)
	default:
		b.WriteString(deployer.PlanText(diffs))
	}
	b.WriteString("\nComment `/plan` to plan again.")
	return b.String()
}

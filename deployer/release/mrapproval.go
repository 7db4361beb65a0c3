package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shipbot/shipbot/deployer/store"
)

// MergeRequestApprovalGate passes once the merge request that produced the
// release's build has Approvals approvals in GitLab. It is asked again
// every Interval, and at once when GitLab reports an approval.
type MergeRequestApprovalGate struct {
	Approvals int           `json:"approvals" yaml:"approvals"`
	Interval  time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"` // default 1m
}

// MRApproval is what GitLab says of the merge request behind a build.
type MRApproval struct {
	IID       int64    // the merge request's iid in the release's project
	Approvers []string // GitLab usernames, in the order they approved
}

// ErrNoMergeRequest means no merge request produced a build's commit, so
// an approval gate on it cannot pass.
var ErrNoMergeRequest = errors.New("no merge request produced this commit")

// MergeRequestApprovals finds the merge request behind a release's build
// and who approved it; the bot layer asks GitLab.
type MergeRequestApprovals interface {
	MergeRequestApprovals(ctx context.Context, r Release) (MRApproval, error)
}

func (g *MergeRequestApprovalGate) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if g.Approvals < 1 || g.Approvals > 20 {
		errs = append(errs, field.Invalid(p.Child("approvals"), g.Approvals, "must be between 1 and 20"))
	}
	return append(errs, nonNegative(p, map[string]time.Duration{"interval": g.Interval})...)
}

// evalMRApproval counts the approvals of the build's merge request. Too
// few keeps the gate pending: people approve on their own time, so it has
// no timeout; a person can still promote past it.
func (e *Stepper) evalMRApproval(ctx context.Context, r *Release, g *MergeRequestApprovalGate, c *Check, now time.Time) {
	c.Next = now.Add(orDefault(g.Interval, time.Minute))
	if e.mrApprovals == nil {
		c.Status, c.Message = CheckFailed, "shipbot has no GitLab token to read merge request approvals with"
		return
	}
	got, err := e.mrApprovals.MergeRequestApprovals(ctx, *r)
	switch {
	case errors.Is(err, ErrNoMergeRequest):
		c.Failures++
		c.Status, c.Message = CheckFailed, fmt.Sprintf("no merge request produced %s, so none can approve it", shortSHA(r.To.SHA))
		return
	case err != nil:
		c.Message = "cannot read approvals from GitLab now; asking again"
		e.log.Warn("merge request approvals", "release", r.ID, "err", err)
		return
	}
	msg := fmt.Sprintf("%d of %d approvals on !%d", len(got.Approvers), g.Approvals, got.IID)
	if len(got.Approvers) > 0 {
		msg += " (" + strings.Join(got.Approvers, ", ") + ")"
	}
	c.Message = msg
	if len(got.Approvers) >= g.Approvals {
		c.Status = CheckPassed
	}
}

func shortSHA(sha string) string { return sha[:min(8, len(sha))] }

// RecheckApprovals makes the running merge request approval gates of the
// project's active releases due now, inside tx: GitLab said someone
// approved, so waiting for the next poll would only delay. It returns the
// ids of the releases to step.
func RecheckApprovals(tx *store.Tx, project string) ([]string, error) {
	var due []string
	err := tx.Releases(func(id string, raw []byte) error {
		var r Release
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode release %s: %w", id, err)
		}
		if r.Project == project && !r.Phase.Terminal() && r.waitsForApproval() {
			due = append(due, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range due {
		err := tx.UpdateRelease(id, func(raw []byte) ([]byte, error) {
			var r Release
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, err
			}
			for i := range r.Checks {
				if c := &r.Checks[i]; c.Status == CheckRunning && r.approvalGate(c.Gate) {
					c.Next = time.Time{}
				}
			}
			return json.Marshal(r)
		})
		if err != nil {
			return nil, err
		}
	}
	return due, nil
}

// waitsForApproval reports whether a merge request approval gate of the
// current stage is running.
func (r *Release) waitsForApproval() bool {
	c := r.runningCheck()
	return c != nil && r.approvalGate(c.Gate)
}

// approvalGate reports whether the current stage's gate name is a merge
// request approval gate.
func (r *Release) approvalGate(name string) bool {
	if r.Stage >= len(r.Stages) {
		return false
	}
	st := r.Stages[r.Stage]
	return slices.ContainsFunc(append(slices.Clone(st.Before), st.After...), func(g Gate) bool {
		return g.Name == name && g.MergeRequestApproval != nil
	})
}

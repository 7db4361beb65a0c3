package release

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EntryApproval is the kind of history entry for one person's approval of a
// continue or promote, in an environment that wants several people to ask
// before the release moves on. Approvals are audit lines: the intent itself
// is recorded once enough people have approved it. Because they are kept in
// the release, the count survives a restart.
const EntryApproval EntryKind = "approval"

// Approval is one person asking for a continue or promote that needs
// several people to ask.
type Approval struct {
	Intent Intent // what is approved (Kind, Percent), by whom (Actor, a GitLab username) and from where (Surface); At defaults to now
	ChatID string // the approver's id on the surface, e.g. a Slack user id; empty on GitLab's own surfaces
	Need   int    // how many different people the environment wants, for the history's words
	// Window bounds how long an approval counts, by the time of its entry;
	// 0 means until the release moves on.
	Window time.Duration
}

func (a Approval) validate() error {
	if err := a.Intent.validate(); err != nil {
		return err
	}
	if a.Need < 1 {
		return fmt.Errorf("%w: an approval needs at least 1 approver, got %d", ErrInvalid, a.Need)
	}
	return nil
}

// Approve appends a's approval to the history and returns who has approved
// the same intent so far, a's approver included, in the order they asked.
// The release must be able to take the intent now. Someone who approved
// already and still counts is not added again: one person counts once.
//
// Approvals count for the stage the release is at and for the same intent
// (kind and percent). A transition, e.g. entering Paused again, and any
// recorded intent, e.g. the one enough approvals led to, start a new count.
func (r *Release) Approve(a Approval) ([]string, error) {
	in := a.Intent
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("approval of %s: %w", in, err)
	}
	if err := r.allows(in); err != nil {
		return nil, fmt.Errorf("%s release %s: %w", in, r.ID, err)
	}
	by := r.approvers(in, a.Window)
	if slices.ContainsFunc(by, sameUser(in.Actor)) {
		return by, nil
	}
	by = append(by, in.Actor)
	r.History = append(r.History, Entry{
		At: in.At, Actor: in.Actor, ChatID: a.ChatID, Surface: in.Surface, Kind: EntryApproval,
		Phase: r.Phase, Stage: r.Stage, Intent: in.String(),
		Message: fmt.Sprintf("approval %d of %d for %s by %s (%s)", len(by), a.Need, r.approvalGoal(in), in.Actor, in.Surface),
	})
	return by, nil
}

// approvalGoal says what an approval is for, e.g. "continue to stage 2".
func (r *Release) approvalGoal(in Intent) string {
	if in.Kind == IntentContinue {
		return fmt.Sprintf("continue to stage %d", r.Stage+1)
	}
	s := in.String()
	if in.Kind == IntentPromoteFull {
		s = "promote to 100 %"
	}
	return fmt.Sprintf("%s at stage %d", s, r.Stage+1)
}

// approvers are the people whose approvals of in count at in.At: distinct,
// in the order they first asked.
func (r *Release) approvers(in Intent, window time.Duration) []string {
	start, since := r.ballotStart()
	var by []string
	for _, e := range r.History[start:] {
		switch {
		case e.Kind != EntryApproval, e.Stage != r.Stage, e.Intent != in.String(),
			e.At.Before(since), window > 0 && in.At.Sub(e.At) > window,
			slices.ContainsFunc(by, sameUser(e.Actor)):
			continue
		}
		by = append(by, e.Actor)
	}
	return by
}

// ballotStart is where the current count of approvals starts: the index in
// the history after the last transition or recorded intent, and the time
// of the last transition. The time also matters because a step that saves
// appends the approvals recorded while it ran after its own entries.
func (r *Release) ballotStart() (int, time.Time) {
	start, since := 0, r.Created
	for i := len(r.History) - 1; i >= 0; i-- {
		e := r.History[i]
		if e.Kind != EntryTransition && e.Kind != EntryIntent {
			continue
		}
		if start == 0 {
			start = i + 1
		}
		if e.Kind == EntryTransition {
			since = e.At
			break
		}
	}
	return start, since
}

// sameUser matches a GitLab username, which GitLab compares without case.
func sameUser(name string) func(string) bool {
	return func(s string) bool { return strings.EqualFold(s, name) }
}

// Approved keeps a's approval in release id's history, in one transaction,
// and returns the release and who has approved the same intent so far (see
// Release.Approve). Surfaces call it, after their authorization check, in
// environments that want several people to approve; once enough have,
// they record the intent with Record.
func (e *Stepper) Approved(ctx context.Context, id string, a Approval) (Release, []string, error) {
	if err := ctx.Err(); err != nil {
		return Release{}, nil, err
	}
	if a.Intent.At.IsZero() {
		a.Intent.At = e.clock.Now()
	}
	var out Release
	var by []string
	err := e.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		if by, err = r.Approve(a); err != nil {
			return nil, err
		}
		out = r
		return json.Marshal(r)
	})
	if err != nil {
		return Release{}, nil, err
	}
	return out, by, nil
}

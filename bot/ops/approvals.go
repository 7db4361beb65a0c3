package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// Approvals is what Releases may also do: keep one person's approval in the
// release's history and say who has approved the same intent so far. Act
// needs it in environments that want several approvals.
type Approvals interface {
	Approved(ctx context.Context, id string, a release.Approval) (release.Release, []string, error)
}

// ApprovalPolicy is what an Authorizer may also say: how many people must
// ask for an intent before it is recorded. Without it, one is enough.
type ApprovalPolicy interface {
	ApprovalRule(r release.Release, kind release.IntentKind) ApprovalRule
}

// ApprovalRule says how many different people must ask for an intent.
type ApprovalRule struct {
	Need   int           // distinct approvers; less than 2 means the first request is recorded
	Window time.Duration // how long an approval counts; 0 means until the release moves on
	Role   string        // who may approve, for the answer, e.g. "Maintainer"
}

// ApprovalError answers a continue or promote that counted as one approval
// of several needed. The approval is in the release's history; the intent
// is recorded by the request that completes the count.
//
// It wraps ErrNeedsMoreApprovals and ErrForbidden, so a surface that knows
// nothing of approvals shows its text and records nothing, while one that
// does can test errors.Is(err, ErrNeedsMoreApprovals) first and answer
// "approval noted" instead of "refused".
type ApprovalError struct {
	Release     string
	Environment string
	Kind        release.IntentKind
	Approvers   []string // GitLab usernames, in the order they asked
	Need        int
	Role        string // the least role an approver needs, e.g. "Maintainer"
}

// Error says how far the count is, e.g. "1 of 2 approvals to continue on
// prod1 (alice); waiting for another Maintainer".
func (e *ApprovalError) Error() string {
	role := e.Role
	if role == "" {
		role = "approver"
	}
	more := "another " + role
	if left := e.Need - len(e.Approvers); left > 1 {
		more = fmt.Sprintf("%d more people with %s or above", left, role)
	}
	return fmt.Sprintf("%d of %d approvals to %s on %s (%s); waiting for %s",
		len(e.Approvers), e.Need, verb(e.Kind), e.Environment, strings.Join(e.Approvers, ", "), more)
}

// Unwrap makes errors.Is match both ErrNeedsMoreApprovals and ErrForbidden.
func (e *ApprovalError) Unwrap() []error { return []error{ErrNeedsMoreApprovals, ErrForbidden} }

func verb(kind release.IntentKind) string {
	if kind == release.IntentPromote || kind == release.IntentPromoteFull {
		return "promote"
	}
	return string(kind)
}

// approve counts in as a's approval when r's environment wants several, and
// returns nil once enough people have asked for it to be recorded. Until
// then it returns an *ApprovalError; the count is kept in the release, not
// here, so a restart loses none.
func (s *Service) approve(ctx context.Context, a Actor, r release.Release, in release.Intent) (release.Release, error) {
	p, ok := s.Authz.(ApprovalPolicy)
	if !ok {
		return r, nil
	}
	rule := p.ApprovalRule(r, in.Kind)
	if rule.Need < 2 {
		return r, nil
	}
	keeper, ok := s.Releases.(Approvals)
	if !ok {
		return r, fmt.Errorf("%s on %s needs %d approvals, and the release store cannot keep them", in, r.Environment, rule.Need)
	}
	out, by, err := keeper.Approved(ctx, r.ID, release.Approval{Intent: in, ChatID: a.ChatID, Need: rule.Need, Window: rule.Window})
	if err != nil {
		return r, fmt.Errorf("approval of %s by %s: %w", in, a.Username, err)
	}
	s.log().Info("release approval recorded", "release", r.ID, "actor", a.Username, "chat_id", a.ChatID, "surface", a.Surface,
		"intent", in.String(), "stage", out.Stage, "approvers", by, "need", rule.Need)
	if len(by) < rule.Need {
		return out, &ApprovalError{Release: r.ID, Environment: r.Environment, Kind: in.Kind, Approvers: by, Need: rule.Need, Role: rule.Role}
	}
	return out, nil
}

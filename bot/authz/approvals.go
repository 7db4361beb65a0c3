package authz

import (
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// ErrNeedsMoreApprovals marks a continue or promote that counted as an
// approval but is not accepted yet: more people must ask for it. It is
// ops.ErrNeedsMoreApprovals, so that ops keeps no refusal for it.
var ErrNeedsMoreApprovals = ops.ErrNeedsMoreApprovals

// ApprovalError answers a continue or promote that counted as one approval
// of several needed; see ops.ApprovalError.
type ApprovalError = ops.ApprovalError

var _ ops.ApprovalPolicy = (*Authorizer)(nil)

// ApprovalRule says how many people must ask for kind on r before it is
// recorded: the environment's approvals for what moves a release on, one
// for what stops it and for an ended release (which refuses the intent
// itself). The Authorizer only decides who may approve; ops.Service keeps
// and counts the approvals in the release's history.
func (z *Authorizer) ApprovalRule(r release.Release, kind release.IntentKind) ops.ApprovalRule {
	rule := ops.ApprovalRule{Need: 1, Window: z.opts.ApprovalWindow, Role: roleName(z.required(r.Environment))}
	if movesOn(kind) && !r.Phase.Terminal() {
		rule.Need = z.Needed(r.Environment)
	}
	return rule
}

// Needed is how many different people must continue or promote a release
// in env; at least one.
func (z *Authorizer) Needed(env string) int {
	if z.opts.Approvals == nil {
		return 1
	}
	return max(z.opts.Approvals(env), 1)
}

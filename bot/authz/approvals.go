package authz

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// ErrNeedsMoreApprovals marks a continue or promote that counted as an
// approval but is not accepted yet: more people must ask for it. It is
// ops.ErrNeedsMoreApprovals, so that ops keeps no refusal for it.
var ErrNeedsMoreApprovals = ops.ErrNeedsMoreApprovals

// ApprovalError answers a continue or promote that counted as one approval
// of several needed. Nothing is recorded on the release: the Authorizer
// keeps the count, and the approver whose request completes it gets nil
// from Authorize, so their intent is the one ops.Service.Act records.
//
// It wraps ErrNeedsMoreApprovals and ops.ErrForbidden, so a surface that
// knows nothing of approvals shows its text and records nothing, while one
// that does can test errors.Is(err, ErrNeedsMoreApprovals) first and
// answer "approval noted" instead of "refused".
//
// The count lives in memory: a restart forgets it (the safe side: more
// approvals, never fewer), and the release's history names only the last
// approver; the earlier ones are in the log.
type ApprovalError struct {
	Release     string
	Environment string
	Kind        release.IntentKind
	Approvers   []string // GitLab usernames, in the order they asked
	Need        int
	Role        gitlab.AccessLevel // the least role an approver needs
}

// Error says how far the count is, e.g. "1 of 2 approvals to continue on
// prod1 (alice); waiting for another Maintainer".
func (e *ApprovalError) Error() string {
	more := "another " + roleName(e.Role)
	if left := e.Need - len(e.Approvers); left > 1 {
		more = fmt.Sprintf("%d more people with %s or above", left, roleName(e.Role))
	}
	return fmt.Sprintf("%d of %d approvals to %s on %s (%s); waiting for %s",
		len(e.Approvers), e.Need, verb(e.Kind), e.Environment, strings.Join(e.Approvers, ", "), more)
}

// Unwrap makes errors.Is match both ErrNeedsMoreApprovals and ops.ErrForbidden.
func (e *ApprovalError) Unwrap() []error { return []error{ErrNeedsMoreApprovals, ops.ErrForbidden} }

// approve counts a's request when the environment wants several.
func (z *Authorizer) approve(a ops.Actor, r release.Release, kind release.IntentKind, role gitlab.AccessLevel) error {
	need := 1
	if z.opts.Approvals != nil {
		need = z.opts.Approvals(r.Environment)
	}
	if need < 2 || r.Phase.Terminal() {
		return nil // an ended release refuses the intent itself
	}
	key := ballotKey{release: r.ID, stage: r.Stage, kind: kind}
	by, done := z.approvals.vote(key, a.Username, need, z.now(), z.opts.ApprovalWindow)
	z.log.Info("authz: approval counted", "actor", a.Username, "surface", a.Surface, "release", r.ID,
		"stage", r.Stage, "intent", kind, "approvers", by, "need", need)
	if done {
		return nil
	}
	return &ApprovalError{Release: r.ID, Environment: r.Environment, Kind: kind, Approvers: by, Need: need, Role: role}
}

// ballotKey is what approvals are for: one kind of intent at one stage of
// one release. A continue and a promote are counted apart, as they ask for
// different things; a stage left behind takes its approvals with it.
type ballotKey struct {
	release string
	stage   int
	kind    release.IntentKind
}

type ballot struct {
	by     []string
	opened time.Time
}

// ballots holds the approvals being counted. Its zero value is empty.
type ballots struct {
	mu sync.Mutex
	m  map[ballotKey]*ballot
}

// vote adds who to the ballot, once however often they ask, and returns who
// has approved so far. Once need people have, the ballot is closed: the
// next move of the release starts a fresh count.
func (b *ballots) vote(key ballotKey, who string, need int, now time.Time, window time.Duration) (by []string, done bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[ballotKey]*ballot{}
	}
	for k, v := range b.m {
		if now.Sub(v.opened) > window {
			delete(b.m, k)
		}
	}
	v := b.m[key]
	if v == nil {
		v = &ballot{opened: now}
		b.m[key] = v
	}
	if !slices.ContainsFunc(v.by, func(s string) bool { return strings.EqualFold(s, who) }) {
		v.by = append(v.by, who)
	}
	by = slices.Clone(v.by)
	if len(by) >= need {
		delete(b.m, key)
		return by, true
	}
	return by, false
}

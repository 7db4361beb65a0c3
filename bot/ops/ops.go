// Package ops is the one door through which every surface (MR comments,
// Slack, DingTalk links, the dashboard) acts on a release: it resolves who
// is acting, checks that they may, keeps their approval where several are
// needed, and records their intent. Nothing in the chat layer records an
// intent any other way.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// ErrForbidden marks an action the actor may not take; the error's text says
// why, in words fit to show them.
var ErrForbidden = errkind.New(errkind.Forbidden, "forbidden")

// ErrNeedsMoreApprovals marks a forbidden answer that is not a refusal: the
// request counted as one approval of several an environment wants (see
// ApprovalError). Act keeps the approval, not a refusal, for it.
var ErrNeedsMoreApprovals = errkind.New(errkind.NeedsApproval, "needs more approvals")

// ErrNotMapped marks a chat identity that no GitLab user answers to. It
// comes with ErrForbidden: someone shipbot cannot name may not act.
var ErrNotMapped = errors.New("not linked to a GitLab user")

// Actor is a person acting on a release, resolved to their GitLab account.
type Actor struct {
	Username string          // GitLab username
	UserID   int64           // GitLab user id
	Surface  release.Surface // where they acted
	ChatID   string          // their id on the surface, e.g. a Slack user id; empty for GitLab
}

// Releases is what ops needs of the release engine.
type Releases interface {
	List(ctx context.Context, f release.Filter) ([]release.Release, error)
	Get(ctx context.Context, id string) (release.Release, error)
	Record(ctx context.Context, id string, in release.Intent) (release.Release, error)
}

// Refusals is what Releases may also do: keep a refused action in the
// release's audit history. Act uses it when Releases has it.
type Refusals interface {
	Refused(ctx context.Context, id string, f release.Refusal) (release.Release, error)
}

// Authorizer decides whether an actor may act on a release. A refusal wraps
// ErrForbidden.
type Authorizer interface {
	Authorize(ctx context.Context, a Actor, r release.Release, kind release.IntentKind) error
}

// Service authorizes and records intents.
type Service struct {
	Releases Releases
	Authz    Authorizer
	Log      *slog.Logger
}

// Act checks that a may ask for in on release id and records it. Refusals
// wrap ErrForbidden and are kept in the release's history when Releases
// implements Refusals; intents the release cannot take now wrap
// release.ErrConflict or release.ErrInvalid. Where the Authorizer's
// ApprovalPolicy wants several people to ask, Act keeps a's approval in
// the release's history and records the intent only once enough distinct
// people have approved it; until then it returns an *ApprovalError. In an
// environment someone else has locked, Act refuses all but a pause with a
// *LockedError.
func (s *Service) Act(ctx context.Context, a Actor, id string, in release.Intent) (release.Release, error) {
	r, err := s.Releases.Get(ctx, id)
	if err != nil {
		return release.Release{}, err
	}
	in.Actor, in.Surface = a.Username, a.Surface
	err = s.checkLock(ctx, a, r, in.Kind)
	if err == nil {
		err = s.Authz.Authorize(ctx, a, r, in.Kind)
	}
	if err != nil {
		s.log().Warn("release action refused", "release", id, "actor", a.Username, "chat_id", a.ChatID, "surface", a.Surface, "intent", in.Kind, "err", err)
		if errkind.Of(err) == errkind.Forbidden {
			r = s.keepRefusal(ctx, r, release.Refusal{Intent: in, ChatID: a.ChatID, Reason: errkind.Text(err)})
		}
		return r, err
	}
	if r, err = s.approve(ctx, a, r, in); err != nil {
		return r, err
	}
	out, err := s.Releases.Record(ctx, id, in)
	if err != nil {
		return r, fmt.Errorf("%s by %s: %w", in, a.Username, err)
	}
	s.log().Info("release action recorded", "release", id, "actor", a.Username, "surface", a.Surface, "intent", in.String())
	return out, nil
}

// keepRefusal records f on r when Releases can, and returns r as it is
// then. Failing to record it does not change the answer: the log has it.
func (s *Service) keepRefusal(ctx context.Context, r release.Release, f release.Refusal) release.Release {
	rs, ok := s.Releases.(Refusals)
	if !ok {
		return r
	}
	out, err := rs.Refused(ctx, r.ID, f)
	if err != nil {
		s.log().Warn("keep refusal in release history", "release", r.ID, "actor", f.Intent.Actor, "err", err)
		return r
	}
	return out
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// sameUser compares GitLab usernames, which GitLab matches without case.
func sameUser(a, b string) bool { return strings.EqualFold(a, b) }

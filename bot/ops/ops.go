// Package ops is the one door through which every surface (MR comments,
// Slack, DingTalk links, the dashboard) acts on a release: it resolves who
// is acting, checks that they may, and records their intent. Nothing in the
// chat layer records an intent any other way.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/shipbot/shipbot/deployer/release"
)

// ErrForbidden marks an action the actor may not take; the error's text says
// why, in words fit to show them.
var ErrForbidden = errors.New("forbidden")

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
// wrap ErrForbidden; intents the release cannot take now wrap
// release.ErrConflict or release.ErrInvalid.
func (s *Service) Act(ctx context.Context, a Actor, id string, in release.Intent) (release.Release, error) {
	r, err := s.Releases.Get(ctx, id)
	if err != nil {
		return release.Release{}, err
	}
	if err := s.Authz.Authorize(ctx, a, r, in.Kind); err != nil {
		s.log().Warn("release action refused", "release", id, "actor", a.Username, "surface", a.Surface, "intent", in.Kind, "err", err)
		return r, err
	}
	in.Actor, in.Surface = a.Username, a.Surface
	out, err := s.Releases.Record(ctx, id, in)
	if err != nil {
		return r, fmt.Errorf("%s by %s: %w", in, a.Username, err)
	}
	s.log().Info("release action recorded", "release", id, "actor", a.Username, "surface", a.Surface, "intent", in.String())
	return out, nil
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

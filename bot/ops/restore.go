package ops

import (
	"context"
	"fmt"

	"github.com/shipbot/shipbot/deployer/release"
)

// Restorer is what Releases may also do: go back to the last good
// versions. The release scheduler has it.
type Restorer interface {
	PlanLastGood(ctx context.Context, project, env string) ([]release.Restore, error)
	RestoreLastGood(ctx context.Context, q release.RestoreRequest) ([]release.Release, error)
}

// PlanLastGood says what going back to the last good versions of project
// (in env, when set) would change. Reading it needs no role beyond what
// the surface asked for; applying it does (RestoreLastGood).
func (s *Service) PlanLastGood(ctx context.Context, project, env string) ([]release.Restore, error) {
	r, ok := s.Releases.(Restorer)
	if !ok {
		return nil, fmt.Errorf("%w: this shipbot cannot go back to last good versions", release.ErrInvalid)
	}
	return r.PlanLastGood(ctx, project, env)
}

// RestoreLastGood applies the plan a confirmed by digest, once a may roll
// back in every environment it touches.
func (s *Service) RestoreLastGood(ctx context.Context, a Actor, project, env, digest, reason string) ([]release.Release, error) {
	plan, err := s.PlanLastGood(ctx, project, env)
	if err != nil {
		return nil, err
	}
	for _, rs := range plan {
		if rs.Path == release.PathNone {
			continue
		}
		target := release.Release{ID: rs.Active, Project: rs.Project, Environment: rs.Environment}
		if err := s.Authz.Authorize(ctx, a, target, release.IntentRollback); err != nil {
			s.log().Warn("back to last good refused", "project", project, "environment", rs.Environment, "actor", a.Username, "err", err)
			return nil, err
		}
	}
	out, err := s.Releases.(Restorer).RestoreLastGood(ctx, release.RestoreRequest{Project: project, Environment: env,
		Digest: digest, Actor: a.Username, Surface: a.Surface, Reason: reason})
	if err != nil {
		return out, err
	}
	s.log().Info("back to last good", "project", project, "environment", env, "actor", a.Username, "surface", a.Surface, "releases", len(out))
	return out, nil
}

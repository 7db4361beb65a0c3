package ops

import (
	"context"
	"fmt"

	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// Locks is what Releases may also do: keep environment locks. Lock,
// Unlock and the lock check in Act need it.
type Locks interface {
	LockEnvironment(ctx context.Context, l release.Lock) (release.Lock, error)
	Unlock(ctx context.Context, env, by string, via release.Surface, force bool) (release.Lock, error)
	EnvironmentLock(ctx context.Context, env string) (release.Lock, bool, error)
}

// EnvAction is what a person does to an environment rather than to one
// release. Stored and logged as these strings.
type EnvAction string

// Environment actions.
const (
	EnvLock      EnvAction = "lock"       // take or release one's own lock
	EnvBreakLock EnvAction = "break-lock" // remove someone else's lock: Maintainer or above
	EnvDeploy    EnvAction = "deploy"     // release a chosen build to the environment
)

// EnvironmentAuthorizer is what an Authorizer may also decide: whether a
// may act on environment env, judged by their role on project.
type EnvironmentAuthorizer interface {
	AuthorizeEnvironment(ctx context.Context, a Actor, project, env string, action EnvAction) error
}

// LockedError refuses an action on a release in an environment someone
// else has locked. It wraps ErrForbidden, so surfaces show its text.
type LockedError struct{ Lock release.Lock }

// Error names the holder and the reason.
func (e *LockedError) Error() string {
	return fmt.Sprintf("%s; only %s can act on its releases until it is unlocked (a Maintainer can break the lock with /unlock %s)",
		e.Lock, e.Lock.Holder, e.Lock.Environment)
}

// Unwrap makes errors.Is match ErrForbidden.
func (e *LockedError) Unwrap() error { return ErrForbidden }

// checkLock refuses a's intent when someone else holds r's environment.
// Pausing stays open to everyone: holding a release still is always safe.
func (s *Service) checkLock(ctx context.Context, a Actor, r release.Release, kind release.IntentKind) error {
	locks, ok := s.Releases.(Locks)
	if !ok || kind == release.IntentPause {
		return nil
	}
	l, locked, err := locks.EnvironmentLock(ctx, r.Environment)
	switch {
	case err != nil:
		return fmt.Errorf("read lock of %s: %w", r.Environment, err)
	case !locked || sameUser(l.Holder, a.Username):
		return nil
	}
	return &LockedError{Lock: l}
}

// Lock locks env for a, after checking a's role on project reaches the
// environment's access.
func (s *Service) Lock(ctx context.Context, a Actor, project, env, reason string) (release.Lock, error) {
	locks, err := s.locks(ctx, a, project, env, EnvLock)
	if err != nil {
		return release.Lock{}, err
	}
	l, err := locks.LockEnvironment(ctx, release.Lock{Environment: env, Holder: a.Username, Reason: reason, Surface: a.Surface})
	if err != nil {
		return release.Lock{}, err
	}
	s.log().Info("environment locked", "environment", env, "actor", a.Username, "surface", a.Surface, "reason", l.Reason)
	return l, nil
}

// Unlock removes env's lock: the holder's own, or anyone's for a
// Maintainer, which breaks it. It returns the lock removed.
func (s *Service) Unlock(ctx context.Context, a Actor, project, env string) (release.Lock, error) {
	locks, ok := s.Releases.(Locks)
	if !ok {
		return release.Lock{}, fmt.Errorf("unlock %s: %w: this shipbot keeps no locks", env, release.ErrInvalid)
	}
	l, locked, err := locks.EnvironmentLock(ctx, env)
	if err != nil {
		return release.Lock{}, err
	}
	action := EnvLock
	if locked && !sameUser(l.Holder, a.Username) {
		action = EnvBreakLock
	}
	if _, err := s.locks(ctx, a, project, env, action); err != nil {
		return release.Lock{}, err
	}
	return locks.Unlock(ctx, env, a.Username, a.Surface, action == EnvBreakLock)
}

// locks authorizes action on env and returns where locks are kept.
func (s *Service) locks(ctx context.Context, a Actor, project, env string, action EnvAction) (Locks, error) {
	locks, ok := s.Releases.(Locks)
	if !ok {
		return nil, fmt.Errorf("%s %s: %w: this shipbot keeps no locks", action, env, release.ErrInvalid)
	}
	if err := s.AuthorizeEnvironment(ctx, a, project, env, action); err != nil {
		return nil, err
	}
	return locks, nil
}

// AuthorizeEnvironment checks a may take action on env. An Authorizer that
// cannot judge environments refuses: a gap must not open production.
func (s *Service) AuthorizeEnvironment(ctx context.Context, a Actor, project, env string, action EnvAction) error {
	z, ok := s.Authz.(EnvironmentAuthorizer)
	if !ok {
		return fmt.Errorf("%s %s: %w: shipbot cannot check roles on environments here", action, env, ErrForbidden)
	}
	if err := z.AuthorizeEnvironment(ctx, a, project, env, action); err != nil {
		s.log().Warn("environment action refused", "environment", env, "actor", a.Username, "surface", a.Surface, "action", action, "err", err)
		if errkind.Of(err) == errkind.Forbidden {
			return err
		}
		return fmt.Errorf("%s %s: %w", action, env, err)
	}
	return nil
}

// CheckEnvironmentLock refuses a, with a *LockedError, when someone else
// holds env's lock: what starts a release there, such as a deploy of a
// chosen version, is the holder's alone.
func (s *Service) CheckEnvironmentLock(ctx context.Context, a Actor, env string) error {
	return s.checkLock(ctx, a, release.Release{Environment: env}, release.IntentContinue)
}

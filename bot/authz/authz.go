// Package authz decides who may act on a release, whatever surface they act
// from: Slack, DingTalk, an MR comment, the CLI or the API all reach it
// through ops.Service.Act.
//
// An actor needs at least the environment's GitLab role on the release's
// project, as GitLab reports it including roles inherited from groups. On
// top of that, the person who started a release may be barred from moving
// it on themselves, and an environment may want several people to ask
// before a release moves on (see ApprovalRule; ops.Service keeps and counts
// the approvals in the release's history). Stopping a release (pause,
// rollback, abort) needs only the role: it is always safe.
//
// Resolver maps chat identities to the GitLab users these checks are about.
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// GitLab is what the Authorizer asks of GitLab; *gitlab.Client has it.
type GitLab interface {
	ProjectID(ctx context.Context, path string) (int64, error)
	AccessLevel(ctx context.Context, projectID, userID int64) (gitlab.AccessLevel, error)
	UserByUsername(ctx context.Context, username string) (gitlab.User, error)
}

var _ GitLab = (*gitlab.Client)(nil)

// Defaults of Options.
const (
	// DefaultTTL is how long answers from GitLab are reused: long enough
	// that a burst of clicks costs one lookup, short enough that a removed
	// member loses access within a minute.
	DefaultTTL = 30 * time.Second
	// DefaultApprovalWindow is how long an approval counts.
	DefaultApprovalWindow = 24 * time.Hour
)

// Options configure an Authorizer. Only GitLab is required.
type Options struct {
	GitLab GitLab
	// RequiredAccess is the least role needed to act on releases in an
	// environment. Nil, or NoAccess or an unknown level for some
	// environment, means Maintainer: a gap in the configuration must not
	// open an environment to everyone.
	RequiredAccess func(environment string) gitlab.AccessLevel
	// Approvals is how many people must ask for a continue or promote in
	// an environment before it is accepted. Nil, or less than 2, means one.
	Approvals func(environment string) int
	// ForbidSelfApproval bars the person who started a release
	// (Release.TriggeredBy) from continuing or promoting it.
	ForbidSelfApproval bool
	// TTL bounds how long project ids, user ids and roles are reused; 0
	// means DefaultTTL and a negative TTL turns caching off. Errors are
	// never kept.
	TTL time.Duration
	// ApprovalWindow bounds how long an approval counts, by the time it
	// was given; 0 means DefaultApprovalWindow.
	ApprovalWindow time.Duration
	Now            func() time.Time // time.Now when nil
	Log            *slog.Logger     // slog.Default() when nil
}

// Authorizer implements ops.Authorizer against GitLab's roles. It is safe
// for concurrent use.
type Authorizer struct {
	gl       GitLab
	opts     Options
	now      func() time.Time
	log      *slog.Logger
	projects *cache[string, int64]                  // project path -> id
	users    *cache[string, gitlab.User]            // lower-case username -> user
	levels   *cache[membership, gitlab.AccessLevel] // role of a user in a project
}

type membership struct{ project, user int64 }

var _ ops.Authorizer = (*Authorizer)(nil)

// New returns an Authorizer.
func New(o Options) *Authorizer {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.ApprovalWindow <= 0 {
		o.ApprovalWindow = DefaultApprovalWindow
	}
	z := &Authorizer{gl: o.GitLab, opts: o, now: o.Now, log: o.Log}
	if z.now == nil {
		z.now = time.Now
	}
	if z.log == nil {
		z.log = slog.Default()
	}
	z.projects = newCache[string, int64](o.TTL, z.now)
	z.users = newCache[string, gitlab.User](o.TTL, z.now)
	z.levels = newCache[membership, gitlab.AccessLevel](o.TTL, z.now)
	return z
}

// Authorize lets a ask for kind on r, or returns why not: a refusal wraps
// ops.ErrForbidden and its text is fit to show a; any other error is
// GitLab failing and is not the actor's business.
//
// It keeps no count of approvals: in an environment that wants several
// (ApprovalRule), nil means a may approve, and ops.Service counts the
// approval in the release's history.
func (z *Authorizer) Authorize(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error {
	if a.Username == "" {
		return z.refuse(a, r, kind, "shipbot does not know who you are on GitLab")
	}
	forward := movesOn(kind)
	if forward && z.opts.ForbidSelfApproval && strings.EqualFold(a.Username, r.TriggeredBy) {
		return z.refuse(a, r, kind, fmt.Sprintf("%s started this release, so someone else must %s it; %s can still pause, roll back or abort it",
			a.Username, verb(kind), a.Username))
	}
	need := z.required(r.Environment)
	if kind == release.IntentOverrideFreeze {
		// Releasing into a freeze is a Maintainer's decision wherever it is.
		need = max(need, gitlab.Maintainer)
	}
	have, err := z.role(ctx, a, r, kind)
	if err != nil {
		return err
	}
	if have < need {
		return z.refuse(a, r, kind, fmt.Sprintf("%s; %s needs %s", standing(a.Username, have, r.Project), r.Environment, roleName(need)))
	}
	return nil
}

// movesOn reports whether kind moves a release on, rather than stopping it.
// Unknown kinds count as moving on, the stricter side.
func movesOn(kind release.IntentKind) bool {
	switch kind {
	case release.IntentPause, release.IntentRollback, release.IntentAbort:
		return false
	}
	return true
}

func verb(kind release.IntentKind) string {
	if kind == release.IntentPromote || kind == release.IntentPromoteFull {
		return "promote"
	}
	return string(kind)
}

func (z *Authorizer) required(env string) gitlab.AccessLevel {
	if z.opts.RequiredAccess == nil {
		return gitlab.Maintainer
	}
	l := z.opts.RequiredAccess(env)
	if l <= gitlab.NoAccess || l > gitlab.Owner {
		return gitlab.Maintainer
	}
	return l
}

// role is a's role on r's project. A refusal is returned for what the
// actor can fix or should hear about; GitLab's failures come back as they are.
func (z *Authorizer) role(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) (gitlab.AccessLevel, error) {
	if r.Project == "" {
		return 0, z.refuse(a, r, kind, fmt.Sprintf("release %s names no GitLab project, so shipbot cannot check who may act on it", r.ID))
	}
	pid, err := z.projectID(ctx, r.Project)
	if err != nil {
		return 0, fmt.Errorf("authz: %w", err)
	}
	uid, refused, err := z.userID(ctx, a)
	switch {
	case err != nil:
		return 0, err
	case refused != "":
		return 0, z.refuse(a, r, kind, refused)
	}
	return z.level(ctx, pid, uid)
}

// userID is a's GitLab user id. A surface that knows only the username
// has it looked up; refused says why when GitLab has no such user, or
// the account is not active.
func (z *Authorizer) userID(ctx context.Context, a ops.Actor) (id int64, refused string, err error) {
	if a.UserID != 0 {
		return a.UserID, "", nil
	}
	u, err := z.user(ctx, a.Username)
	switch {
	case errors.Is(err, gitlab.ErrNotFound):
		return 0, fmt.Sprintf("%s is not a GitLab user", a.Username), nil
	case err != nil:
		return 0, "", fmt.Errorf("authz: %w", err)
	case !u.Active():
		return 0, fmt.Sprintf("GitLab account %s is %s", u.Username, u.State), nil
	}
	return u.ID, "", nil
}

// level is the user's role in the project, as GitLab says or as it said
// within the TTL.
func (z *Authorizer) level(ctx context.Context, pid, uid int64) (gitlab.AccessLevel, error) {
	l, err := z.levels.load(ctx, membership{project: pid, user: uid}, func(ctx context.Context) (gitlab.AccessLevel, error) {
		return z.gl.AccessLevel(ctx, pid, uid)
	})
	if err != nil {
		return 0, fmt.Errorf("authz: %w", err)
	}
	return l, nil
}

func (z *Authorizer) projectID(ctx context.Context, path string) (int64, error) {
	return z.projects.load(ctx, path, func(ctx context.Context) (int64, error) {
		return z.gl.ProjectID(ctx, path)
	})
}

func (z *Authorizer) user(ctx context.Context, username string) (gitlab.User, error) {
	return z.users.load(ctx, strings.ToLower(username), func(ctx context.Context) (gitlab.User, error) {
		return z.gl.UserByUsername(ctx, username)
	})
}

// refusal is a refused action; its text is fit to show the actor.
type refusal struct{ reason string }

func (e *refusal) Error() string { return e.reason }
func (e *refusal) Unwrap() error { return ops.ErrForbidden }

func (z *Authorizer) refuse(a ops.Actor, r release.Release, kind release.IntentKind, reason string) error {
	z.log.Info("authz: refused", "actor", a.Username, "surface", a.Surface, "release", r.ID,
		"project", r.Project, "environment", r.Environment, "intent", kind, "reason", reason)
	return &refusal{reason: reason}
}

// standing says what user is on project, e.g. "alice is Developer on shop/web".
func standing(user string, have gitlab.AccessLevel, project string) string {
	if have <= gitlab.NoAccess {
		return fmt.Sprintf("%s is not a member of %s", user, project)
	}
	return fmt.Sprintf("%s is %s on %s", user, roleName(have), project)
}

// roleName is a role as GitLab's UI writes it, e.g. "Maintainer".
func roleName(l gitlab.AccessLevel) string {
	s := strings.ReplaceAll(l.String(), "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// AuthorizeEnvironment lets a take action on env, judged by a's role on
// project: the environment's access, and at least Maintainer to break
// someone else's lock.
func (z *Authorizer) AuthorizeEnvironment(ctx context.Context, a ops.Actor, project, env string, action ops.EnvAction) error {
	r := release.Release{Project: project, Environment: env}
	kind := release.IntentKind(action)
	if a.Username == "" {
		return z.refuse(a, r, kind, "shipbot does not know who you are on GitLab")
	}
	need := z.required(env)
	if action == ops.EnvBreakLock {
		need = max(need, gitlab.Maintainer)
	}
	have, err := z.role(ctx, a, r, kind)
	if err != nil {
		return err
	}
	if have < need {
		return z.refuse(a, r, kind, fmt.Sprintf("%s; %s needs %s to %s", standing(a.Username, have, project), env, roleName(need), strings.ReplaceAll(string(action), "-", " a ")))
	}
	return nil
}

var _ ops.EnvironmentAuthorizer = (*Authorizer)(nil)

package mergerequest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/shipbot/shipbot/bot/command"
	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// Governor is what environment commands need of the ops door: locks.
// *ops.Service has it; without it /lock and /unlock answer that they are off.
type Governor interface {
	Lock(ctx context.Context, a ops.Actor, project, env, reason string) (release.Lock, error)
	Unlock(ctx context.Context, a ops.Actor, project, env string) (release.Lock, error)
}

var _ Governor = (*ops.Service)(nil)

// VersionDeployer releases a chosen tag or commit to an environment;
// *govern.Deploys is it. Without one, /deploy answers that it is off.
type VersionDeployer interface {
	Deploy(ctx context.Context, a ops.Actor, project, ref, env string) ([]release.Release, error)
}

// deployCommand answers /deploy <ref> to <env>.
func (c *Commands) deployCommand(ctx context.Context, n *gitlabevent.Note, cmd command.Command, log *slog.Logger) (bool, string, error) {
	if c.Deploys == nil {
		return false, "❌ `/deploy` is not available in this shipbot; nothing was done.", nil
	}
	a := ops.Actor{Username: n.User.Username, UserID: n.User.ID, Surface: release.SurfaceMRComment}
	rels, err := c.Deploys.Deploy(ctx, a, n.Project.Path, cmd.Ref, cmd.Target)
	log.Info("deploy command", "command", cmd.String(), "releases", len(rels), "err", err)
	switch kind := errkind.Of(err); {
	case err == nil:
	case kind == errkind.Forbidden, kind == errkind.Conflict, kind == errkind.Invalid:
		return false, fmt.Sprintf("❌ Cannot deploy %s to %s: %s. Nothing was recorded.", markup.Code(cmd.Ref), markup.Markdown(cmd.Target), because(err)), nil
	default:
		return false, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "🚀 Deploying %s to %s, asked by %s:\n", markup.Code(cmd.Ref), markup.Markdown(cmd.Target), a.Username)
	for _, r := range rels {
		fmt.Fprintf(&b, "\n- %s: %s", name(r), describe(r, c.Now()))
	}
	return true, b.String(), nil
}

// environmentCommand answers /lock and /unlock, which act on an
// environment, not on a release.
func (c *Commands) environmentCommand(ctx context.Context, n *gitlabevent.Note, cmd command.Command, log *slog.Logger) (bool, string, error) {
	g, ok := c.Ops.(Governor)
	if !ok {
		return false, "❌ Locks are not available in this shipbot; nothing was done.", nil
	}
	a := ops.Actor{Username: n.User.Username, UserID: n.User.ID, Surface: release.SurfaceMRComment}
	var l release.Lock
	var err error
	if cmd.Name == command.NameLock {
		l, err = g.Lock(ctx, a, n.Project.Path, cmd.Target, cmd.Reason)
	} else {
		l, err = g.Unlock(ctx, a, n.Project.Path, cmd.Target)
	}
	log.Info("environment command", "command", cmd.String(), "err", err)
	switch kind := errkind.Of(err); {
	case err == nil && cmd.Name == command.NameLock:
		return true, fmt.Sprintf("🔒 Locked: %s. Until %s, releases there start and move on only for %s.", markup.Markdown(l.String()), markup.Code("/unlock "+l.Environment), markup.Markdown(l.Holder)), nil
	case err == nil && sameHolder(l, a.Username):
		return true, fmt.Sprintf("🔓 Unlocked %s.", markup.Markdown(l.Environment)), nil
	case err == nil:
		return true, fmt.Sprintf("🔓 Broke %s's lock on %s (%s). This is kept in the history of its releases.", markup.Markdown(l.Holder), markup.Markdown(l.Environment), markup.Markdown(fmt.Sprintf("%q", l.Reason))), nil
	case kind == errkind.Forbidden, kind == errkind.Conflict, kind == errkind.Invalid:
		return false, fmt.Sprintf("❌ Cannot %s %s: %s. Nothing was done.", cmd.Name, markup.Markdown(cmd.Target), because(err)), nil
	}
	return false, "", err
}

func sameHolder(l release.Lock, user string) bool { return strings.EqualFold(l.Holder, user) }

// LastGooder plans and applies going back to the last good versions;
// *ops.Service is it.
type LastGooder interface {
	PlanLastGood(ctx context.Context, project, env string) ([]release.Restore, error)
	RestoreLastGood(ctx context.Context, a ops.Actor, project, env, digest, reason string) ([]release.Release, error)
}

var _ LastGooder = (*ops.Service)(nil)

// lastGoodCommand answers /rollback last-good with the plan and how to
// confirm it, and /rollback last-good <digest> by applying that plan.
func (c *Commands) lastGoodCommand(ctx context.Context, n *gitlabevent.Note, cmd command.Command, log *slog.Logger) (bool, string, error) {
	lg, ok := c.Ops.(LastGooder)
	if !ok {
		return false, "❌ `/rollback last-good` is not available in this shipbot; nothing was done.", nil
	}
	if cmd.Digest == "" {
		plan, err := lg.PlanLastGood(ctx, n.Project.Path, "")
		if err != nil {
			return false, "", err
		}
		return true, planText(plan), nil
	}
	a := ops.Actor{Username: n.User.Username, UserID: n.User.ID, Surface: release.SurfaceMRComment}
	rels, err := lg.RestoreLastGood(ctx, a, n.Project.Path, "", cmd.Digest, "from merge request !"+fmt.Sprint(n.MergeRequest.IID))
	log.Info("rollback last-good", "command", cmd.String(), "releases", len(rels), "err", err)
	switch kind := errkind.Of(err); {
	case err == nil:
	case kind == errkind.Forbidden, kind == errkind.Conflict, kind == errkind.Invalid:
		return false, "❌ Cannot go back to the last good versions: " + because(err) + ". Nothing was recorded.", nil
	default:
		return false, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "⏪ Going back to the last good versions, asked by %s:\n", a.Username)
	for _, r := range rels {
		fmt.Fprintf(&b, "\n- %s: %s", name(r), describe(r, c.Now()))
	}
	return true, b.String(), nil
}

// planText shows a plan per environment and cluster, and how to confirm it.
func planText(plan []release.Restore) string {
	var b strings.Builder
	b.WriteString("⏪ **Back to last good**: what it would change\n")
	work := false
	for _, rs := range plan {
		fmt.Fprintf(&b, "\n- %s on %s: %s %s → %s", markup.Markdown(rs.Environment), markup.Markdown(rs.Cluster), markup.Markdown(rs.App), markup.Code(rs.Current.Name), markup.Code(rs.Good.Name))
		switch rs.Path {
		case release.PathNone:
			b.WriteString(" (already serving it)")
			continue
		case release.PathRollback:
			fmt.Fprintf(&b, " by rolling back release `%s`", rs.Active)
		default:
			fmt.Fprintf(&b, " by a release in one stage, as release `%s` left it", rs.GoodRelease)
		}
		work = true
		for _, line := range append(append([]string{rs.Diff.Image}, rs.Diff.Params...), rs.Diff.Objects...) {
			if line != "" {
				fmt.Fprintf(&b, "\n  - %s", markup.Code(line))
			}
		}
	}
	if len(plan) == 0 {
		return "ℹ️ No release of this project has succeeded: there is no good version to go back to."
	}
	if !work {
		return b.String() + "\n\nEvery environment already serves its last good version; nothing to do."
	}
	return b.String() + fmt.Sprintf("\n\nTo go ahead, comment `/rollback last-good %s`.", release.PlanDigest(plan))
}

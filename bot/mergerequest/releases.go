package mergerequest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/command"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Acter records an intent once it has checked who asks; *ops.Service is the
// one implementation, so MR comments act through the same door as chat.
type Acter interface {
	Act(ctx context.Context, a ops.Actor, id string, in release.Intent) (release.Release, error)
}

var _ Acter = (*ops.Service)(nil)

// Releases finds releases; it cannot record intents, which only Acter does.
type Releases interface {
	List(ctx context.Context, f release.Filter) ([]release.Release, error)
	Get(ctx context.Context, id string) (release.Release, error)
}

var _ Releases = (*release.Scheduler)(nil)

// recentEnded bounds how many ended releases /status looks through for the
// merge request's own, each costing a GitLab call per commit.
const recentEnded = 10

var releaseID = regexp.MustCompile(`^r[0-9]{12,}$`)

// releaseCommand runs a release command once the worker has forgotten it:
// a command that moves production runs at most once, so a restart never
// continues a release twice. Until then nothing is recorded.
func (c *Commands) releaseCommand(ctx context.Context, n *gitlabevent.Note, cmd command.Command, committed error, log *slog.Logger) {
	if committed != nil {
		log.Error("command not run: the store did not take it off the queue", "command", cmd.String(), "err", committed)
		return
	}
	ok, text, err := c.answer(ctx, n, cmd, log)
	if err != nil {
		ok, text = false, "❌ "+because(err)
		if errors.Is(err, errNoRelease) {
			text = "❌ No release: " + noRelease(err)
		} else {
			log.Error("release command", "command", cmd.String(), "err", err)
		}
	}
	c.conclude(ctx, n, ok, text, log)
}

// answer runs cmd and says how it went. An error is one the reply does not
// explain by itself: no release found, or shipbot failing.
func (c *Commands) answer(ctx context.Context, n *gitlabevent.Note, cmd command.Command, log *slog.Logger) (ok bool, text string, err error) {
	// Anyone may comment on a public project's merge request; only members
	// hear which environments and versions there are.
	switch level, err := c.API.AccessLevel(ctx, n.Project.ID, n.User.ID); {
	case err != nil:
		return false, "", fmt.Errorf("access level of %s: %w", n.User.Username, err)
	case level < gitlab.Guest:
		log.Info("release command from a non-member", "command", cmd.String())
		return false, fmt.Sprintf("❌ @%s is not a member of this project; shipbot answers release commands from members only.", n.User.Username), nil
	}
	switch cmd.Name {
	case command.NameStatus:
		return c.status(ctx, n, cmd)
	case command.NameLock, command.NameUnlock:
		return c.environmentCommand(ctx, n, cmd, log)
	case command.NameDeploy:
		return c.deployCommand(ctx, n, cmd, log)
	case command.NameRollback:
		if cmd.Target == command.LastGood {
			return c.lastGoodCommand(ctx, n, cmd, log)
		}
	}
	rels, err := c.targets(ctx, n, cmd, false)
	if err != nil {
		return false, "", err
	}
	if len(rels) > 1 {
		return false, "❓ " + ambiguous(cmd, rels, c.Now()), nil
	}
	r, in := rels[0], intentOf(cmd)
	actor := ops.Actor{Username: n.User.Username, UserID: n.User.ID, Surface: release.SurfaceMRComment}
	out, err := c.Ops.Act(ctx, actor, r.ID, in)
	log.Info("release command", "command", cmd.String(), "release", r.ID, "err", err)
	switch kind := errkind.Of(err); {
	case err == nil:
	case kind == errkind.NeedsApproval:
		return true, fmt.Sprintf("🗳️ Approval counted for %s: %s. It is kept in the release's history; the %s itself is recorded once enough people ask.", name(r), because(err), verb(in.Kind)), nil
	case kind == errkind.Forbidden:
		return false, fmt.Sprintf("❌ %s may not %s %s: %s. Nothing was recorded; the refusal is kept in the release's history.",
			n.User.Username, verb(in.Kind), name(r), because(err)), nil
	case kind == errkind.Conflict, kind == errkind.Invalid:
		return false, fmt.Sprintf("❌ Cannot %s %s: %s. Nothing was recorded.", verb(in.Kind), name(r), because(err)), nil
	default:
		return false, "", err
	}
	return true, fmt.Sprintf("✅ Recorded: %s of %s, asked by %s. shipbot acts on it at the release's next step; it was at: %s.",
		asked(in), name(r), n.User.Username, describe(out, c.Now())), nil
}

// status answers /status with where each release the target names stands.
func (c *Commands) status(ctx context.Context, n *gitlabevent.Note, cmd command.Command) (bool, string, error) {
	rels, err := c.targets(ctx, n, cmd, true)
	if errors.Is(err, errNoRelease) {
		return true, "ℹ️ No release: " + noRelease(err), nil
	}
	if err != nil {
		return false, "", err
	}
	lines := make([]string, 0, len(rels))
	for _, r := range rels {
		lines = append(lines, fmt.Sprintf("- %s: %s", name(r), describe(r, c.Now())))
	}
	return true, "ℹ️ **Release status**\n\n" + strings.Join(lines, "\n"), nil
}

// errNoRelease is a target that names no release; the text says what was looked for.
var errNoRelease = errors.New("no release")

// targets finds the releases a command is about: the one its target names,
// or the merge request's own, the releases of a commit the merge request
// holds. An intent only names active releases and prefers one that has
// started to one still queued. /status also takes, for each app,
// environment and cluster with no active release, the newest ended one.
func (c *Commands) targets(ctx context.Context, n *gitlabevent.Note, cmd command.Command, status bool) ([]release.Release, error) {
	project := n.Project.Path
	if releaseID.MatchString(cmd.Target) {
		r, err := c.Releases.Get(ctx, cmd.Target)
		if errors.Is(err, store.ErrNotFound) || (err == nil && r.Project != project) {
			return nil, notFound("there is no release `%s` of %s.", cmd.Target, project)
		}
		return []release.Release{r}, err
	}
	all, err := c.Releases.List(ctx, release.Filter{Project: project, Environment: cmd.Target})
	if err != nil {
		return nil, err
	}
	cands := window(all, status)
	if cmd.Target == "" {
		if cands, err = c.ownReleases(ctx, n, cands); err != nil {
			return nil, err
		}
	}
	if status {
		cands = current(cands)
	} else {
		cands = started(cands)
	}
	if len(cands) == 0 {
		return nil, none(cmd, project, status)
	}
	return cands, nil
}

// window is the active releases of all (newest first) and, with ended, up
// to recentEnded of the newest ended ones.
func window(all []release.Release, ended bool) []release.Release {
	var out []release.Release
	seen := 0
	for _, r := range all {
		switch {
		case !r.Phase.Terminal():
			out = append(out, r)
		case ended && seen < recentEnded:
			seen++
			out = append(out, r)
		}
	}
	return out
}

// current keeps the active releases and, for each target without one, the
// newest ended release: what each environment shows now.
func current(rels []release.Release) []release.Release {
	type target struct{ app, env, cluster string }
	busy := map[target]bool{}
	for _, r := range rels {
		if !r.Phase.Terminal() {
			busy[target{r.App, r.Environment, r.Cluster}] = true
		}
	}
	var out []release.Release
	for _, r := range rels {
		t := target{r.App, r.Environment, r.Cluster}
		if !r.Phase.Terminal() || !busy[t] {
			busy[t] = true
			out = append(out, r)
		}
	}
	return out
}

func none(cmd command.Command, project string, ended bool) error {
	what := "active "
	if ended {
		what = ""
	}
	if cmd.Target != "" {
		return notFound("%s has no %srelease in `%s`.", project, what, cmd.Target)
	}
	example := cmd
	example.Target = "prod1"
	return notFound("no %srelease came from a commit of this merge request. Name one, e.g. `%s` or `%s`.",
		what, example, strings.Replace(example.String(), "prod1", "r000000000012", 1))
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errNoRelease)
}

// noRelease is the text of a notFound error.
func noRelease(err error) string { return strings.TrimSuffix(err.Error(), ": "+errNoRelease.Error()) }

// ownReleases keeps the releases whose commit GitLab lists this merge
// request for: those its merge made, or that contain its commits.
func (c *Commands) ownReleases(ctx context.Context, n *gitlabevent.Note, rels []release.Release) ([]release.Release, error) {
	mine := map[string]bool{}
	var out []release.Release
	for _, r := range rels {
		sha := r.To.SHA
		if _, asked := mine[sha]; !asked && sha != "" {
			mrs, err := c.API.MergeRequestsForCommit(ctx, n.Project.ID, sha)
			if err != nil && !errors.Is(err, gitlab.ErrNotFound) {
				return nil, err
			}
			mine[sha] = slices.ContainsFunc(mrs, func(m gitlab.MergeRequest) bool { return m.IID == n.MergeRequest.IID })
		}
		if mine[sha] {
			out = append(out, r)
		}
	}
	return out, nil
}

// started keeps the releases that have started when there are any: with
// prod1 paused and prod2 queued behind it, a command means prod1.
func started(rels []release.Release) []release.Release {
	out := slices.DeleteFunc(slices.Clone(rels), func(r release.Release) bool { return r.Phase == release.Pending })
	if len(out) == 0 {
		return rels
	}
	return out
}

// ambiguous asks the commenter to pick one of rels.
func ambiguous(cmd command.Command, rels []release.Release, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s could mean %d releases, so nothing was done. Name one:\n", markup.Code(cmd.String()), len(rels))
	for _, r := range rels {
		pick := cmd
		pick.Target = r.ID
		fmt.Fprintf(&b, "\n- %s: %s · %s", markup.Code(pick.String()), where(r), describe(r, now))
	}
	return b.String()
}

// name says which release r is, e.g. "release `r000000000012` (web `v1-1-0` in prod1 on prod1-cluster)".
func name(r release.Release) string {
	return fmt.Sprintf("release %s (%s)", markup.Code(r.ID), where(r))
}

// where says what r moves where, e.g. "web `v1-1-0` in prod1 on prod1-cluster".
func where(r release.Release) string {
	return fmt.Sprintf("%s %s in %s on %s", markup.Markdown(r.App), markup.Code(r.To.Name), markup.Markdown(r.Environment), markup.Markdown(r.Cluster))
}

// asked says what an intent asks for, e.g. "promote to 50 %".
func asked(in release.Intent) string {
	if in.Kind == release.IntentPromoteFull {
		return "promote to 100 % (full)"
	}
	return in.String()
}

func intentOf(cmd command.Command) release.Intent {
	switch {
	case cmd.Name == command.NamePromote && cmd.Full:
		return release.Intent{Kind: release.IntentPromoteFull}
	case cmd.Name == command.NamePromote:
		return release.Intent{Kind: release.IntentPromote, Percent: cmd.Percent}
	case cmd.Name == command.NameRelease:
		return release.Intent{Kind: release.IntentOverrideFreeze, Comment: cmd.Reason}
	}
	return release.Intent{Kind: release.IntentKind(cmd.Name)}
}

// verb is what an intent asks, as in "may not roll back".
func verb(k release.IntentKind) string {
	switch k {
	case release.IntentPromote, release.IntentPromoteFull:
		return "promote"
	case release.IntentRollback:
		return "roll back"
	case release.IntentOverrideFreeze:
		return "release through the freeze of"
	}
	return string(k)
}

// describe is release.Describe as Markdown: a hold's message and a
// rollback's reason are people's words.
func describe(r release.Release, now time.Time) string {
	return markup.Markdown(release.Describe(r, now))
}

// because is an error's text for people as Markdown: it may quote a
// command's argument or a gate's answer.
func because(err error) string { return markup.Markdown(errkind.Text(err)) }

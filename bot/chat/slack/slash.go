package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/bot/command"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// CommandsPath is where Slack POSTs the /shipbot slash command in HTTP
// mode: the slash command's Request URL is shipbot's public URL plus
// CommandsPath.
const CommandsPath = "/chat/slack/commands"

// Governor locks and unlocks environments after checking the person's
// role; *ops.Service is it.
type Governor interface {
	Lock(ctx context.Context, a ops.Actor, project, env, reason string) (release.Lock, error)
	Unlock(ctx context.Context, a ops.Actor, project, env string) (release.Lock, error)
}

var _ Governor = (*ops.Service)(nil)

// Deployer releases a chosen tag or commit to an environment after the
// same checks; *govern.Deploys is it.
type Deployer interface {
	Deploy(ctx context.Context, a ops.Actor, project, ref, env string) ([]release.Release, error)
}

// Governance is what the /shipbot slash command acts through, so that
// roles, locks and approvals are those of every other surface. A nil
// field turns its verbs off, and the command says so.
type Governance struct {
	Locks   Governor
	Deploys Deployer
	// Projects names the GitLab projects that deploy to an environment.
	// A person's role on a project decides what they may do to the
	// environment, so a command must name the project (--project) unless
	// exactly one deploys there.
	Projects func(env string) []string
}

// slashVerbs are the commands Slack runs; the others act on a merge
// request's release, which Slack reaches through a release message's buttons.
var slashVerbs = []command.Name{command.NameLock, command.NameUnlock, command.NameDeploy}

// slashUsage is the reply to /shipbot help and the end of every refusal
// of a malformed command. Its angle brackets are escaped: in mrkdwn, even
// in code, "<…>" is a link or a mention.
const slashUsage = "*shipbot in Slack*\n" +
	"• `/shipbot lock &lt;environment&gt; \"reason\"`: hold the environment, so that only you can deploy or move releases there\n" +
	"• `/shipbot unlock &lt;environment&gt;`: release your lock; a Maintainer can break someone else's\n" +
	"• `/shipbot deploy &lt;tag or commit&gt; to &lt;environment&gt;`: release that build, whose pipeline must have succeeded\n" +
	"• `/shipbot help`: show this list\n" +
	"Add `--project &lt;group/project&gt;` when more than one project deploys to the environment: your role there decides. " +
	"Release buttons act on one release; the other commands work in merge request comments."

// mrForms turns the parser's comment forms into the slash command's.
var mrForms = strings.NewReplacer("`/lock", "`/shipbot lock", "`/unlock", "`/shipbot unlock", "`/deploy", "`/shipbot deploy")

// slashCommand is one /shipbot command as Slack sends it, over HTTP or Socket Mode.
type slashCommand struct {
	userID string
	text   string // what follows "/shipbot"
}

// slash runs a slash command and returns the reply, in Slack's mrkdwn,
// that only the person who typed it sees.
func (d *dispatcher) slash(ctx context.Context, sc slashCommand) string {
	project, rest, problem := cutProject(sc.text)
	if problem != "" {
		return ":warning: " + problem + "\n\n" + slashUsage
	}
	res := command.Parse("/shipbot " + rest)
	switch {
	case res.Outcome == command.OutcomeRun && slices.Contains(slashVerbs, res.Command.Name):
		return d.govern(ctx, sc.userID, project, res.Command)
	case res.Outcome == command.OutcomeRun:
		return fmt.Sprintf(":information_source: `/shipbot %s` works in merge request comments; in Slack, use the buttons on the release's message.\n\n%s",
			res.Command.Name, slashUsage)
	case res.Outcome == command.OutcomeHelp && res.Command.Name != command.NameHelp:
		problem, _, _ := strings.Cut(res.Reply, "\n\n")
		return ":warning: " + esc(mrForms.Replace(problem)) + "\n\n" + slashUsage
	}
	return slashUsage
}

// cutProject takes "--project group/name" out of a command's text.
func cutProject(text string) (project, rest string, problem string) {
	words := strings.Fields(text)
	i := slices.Index(words, "--project")
	if i < 0 {
		return "", text, ""
	}
	if i+1 == len(words) || !isProjectPath(words[i+1]) {
		return "", "", "`--project` takes a GitLab project path, e.g. `--project shop/web`."
	}
	project = words[i+1]
	words = slices.Delete(words, i, i+2)
	if slices.Contains(words, "--project") {
		return "", "", "Name one project."
	}
	return project, strings.Join(words, " "), ""
}

// isProjectPath accepts a GitLab path with namespace: words of letters,
// digits, '.', '_' and '-' joined by '/'.
func isProjectPath(s string) bool {
	if len(s) > 200 || !strings.Contains(s, "/") {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if part == "" || part[0] == '-' || part[0] == '.' {
			return false
		}
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c)) {
				return false
			}
		}
	}
	return true
}

// govern runs lock, unlock or deploy as the Slack user, through ops, within
// actBudget.
func (d *dispatcher) govern(ctx context.Context, userID, project string, cmd command.Command) string {
	ctx, cancel := context.WithTimeout(ctx, actBudget)
	defer cancel()
	project, problem := d.project(cmd.Target, project)
	if problem != "" {
		return ":warning: " + problem
	}
	a, err := d.actor(ctx, userID)
	if err != nil {
		return d.refusal(ctx, userID, cmd, err)
	}
	var reply string
	switch cmd.Name {
	case command.NameDeploy:
		reply, err = d.deployVersion(ctx, a, project, cmd)
	default:
		reply, err = d.lock(ctx, a, project, cmd)
	}
	if err != nil {
		return d.refusal(ctx, userID, cmd, err)
	}
	d.log.Info("slack: command done", "user", userID, "actor", a.Username, "project", project, "command", cmd.String())
	return reply
}

// project is the project whose role decides: the one named, or the only
// one that deploys to env.
func (d *dispatcher) project(env, named string) (string, string) {
	if named != "" {
		return named, ""
	}
	var ps []string
	if d.gov.Projects != nil {
		ps = d.gov.Projects(env)
	}
	switch len(ps) {
	case 0:
		return "", fmt.Sprintf("No project deploys to `%s` in shipbot's config; name one with `--project &lt;group/project&gt;`.", esc(env))
	case 1:
		return ps[0], ""
	}
	return "", fmt.Sprintf("Several projects deploy to `%s` (%s); say whose role decides with `--project &lt;group/project&gt;`.",
		esc(env), esc(strings.Join(ps, ", ")))
}

// lock runs /shipbot lock and /shipbot unlock.
func (d *dispatcher) lock(ctx context.Context, a ops.Actor, project string, cmd command.Command) (string, error) {
	if d.gov.Locks == nil {
		return ":warning: Locks are not available in this shipbot; nothing was done.", nil
	}
	if cmd.Name == command.NameLock {
		l, err := d.gov.Locks.Lock(ctx, a, project, cmd.Target, cmd.Reason)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf(":lock: Locked: %s. Until `/shipbot unlock %s`, releases there start and move on only for %s.",
			esc(l.String()), esc(l.Environment), esc(l.Holder)), nil
	}
	l, err := d.gov.Locks.Unlock(ctx, a, project, cmd.Target)
	switch {
	case err != nil:
		return "", err
	case l.Holder == "" || strings.EqualFold(l.Holder, a.Username):
		return fmt.Sprintf(":unlock: Unlocked %s.", esc(cmd.Target)), nil
	}
	return fmt.Sprintf(":unlock: Broke %s's lock on %s (%q). This is kept in the history of its releases.",
		esc(l.Holder), esc(l.Environment), esc(l.Reason)), nil
}

// deployVersion runs /shipbot deploy.
func (d *dispatcher) deployVersion(ctx context.Context, a ops.Actor, project string, cmd command.Command) (string, error) {
	if d.gov.Deploys == nil {
		return ":warning: Deploying a version is not available in this shipbot; nothing was done.", nil
	}
	rels, err := d.gov.Deploys.Deploy(ctx, a, project, cmd.Ref, cmd.Target)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, ":rocket: Deploying `%s` of %s to %s, asked by %s:", esc(cmd.Ref), esc(project), esc(cmd.Target), esc(a.Username))
	for _, r := range rels {
		fmt.Fprintf(&b, "\n• `%s`: %s on %s", esc(r.ID), esc(r.App), esc(r.Cluster))
	}
	if len(rels) == 0 {
		b.WriteString(" no app of that project releases there, so nothing was recorded.")
	}
	return b.String(), nil
}

// refusal says why nothing was done: errkind decides the kind and the
// words, as for a click; an internal error's chain goes only to the log.
func (d *dispatcher) refusal(ctx context.Context, userID string, cmd command.Command, err error) string {
	level := slog.LevelInfo
	if errkind.Of(err) == errkind.Internal {
		level = slog.LevelError
	}
	d.log.Log(ctx, level, "slack: command refused", "user", userID, "command", cmd.String(), "err", err)
	verb := string(cmd.Name)
	if cmd.Name == command.NameDeploy {
		verb = "deploy `" + esc(cmd.Ref) + "` to"
	}
	switch kind := errkind.Of(err); {
	case errors.Is(err, errIdentity):
		return unknownIdentity
	case kind == errkind.Forbidden, kind == errkind.NeedsApproval:
		return fmt.Sprintf(":no_entry: You can't %s %s: %s. Nothing was done.", verb, esc(cmd.Target), esc(errkind.Text(err)))
	case kind == errkind.NotFound, kind == errkind.Conflict, kind == errkind.Invalid:
		return fmt.Sprintf(":warning: Cannot %s %s: %s. Nothing was done.", verb, esc(cmd.Target), esc(errkind.Text(err)))
	case errors.Is(err, context.DeadlineExceeded):
		return ":hourglass: shipbot took too long to answer; check where things stand before you try again."
	}
	return ":boom: Nothing was done: " + errkind.InternalText + "."
}

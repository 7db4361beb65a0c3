package mergerequest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/command"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/store"
)

// Commands handles merge request comments: it parses them, checks the
// commenter's role in GitLab, records what the command asks for and answers
// with an emoji and one reply.
type Commands struct {
	API      GitLab
	Previews deployer.Previewer
	// Ops records release intents and Releases finds the release a comment
	// means; without both, release commands answer that they are off.
	Ops      Acter
	Releases Releases
	// Plans plans merge requests on /plan; nil answers that plans are off.
	Plans *Planner
	// Apps gives /preview the apps of the merge request's head, its
	// .shipbot.yaml's included; without a Config, Previews' config serves.
	Apps deployer.Apps
	// Deploys answers /deploy; nil turns it off.
	Deploys VersionDeployer
	Log     *slog.Logger
	Now     func() time.Time
}

// Emojis shipbot reacts with.
const (
	emojiSeen = "eyes"
	emojiDone = "white_check_mark"
	emojiNo   = "x"
)

// previewAccess is the role `/preview` needs: the one that may push to the branch.
const previewAccess = gitlab.Developer

// Wants reports whether a comment may be a command: its payload says it
// is a new, human comment on a merge request that parses as one. It calls
// nothing, so the inbox asks it.
func Wants(n *gitlabevent.Note) bool {
	if n.Action == "update" || n.System || n.MergeRequest == nil || strings.Contains(n.Body, "<!-- shipbot") {
		return false // edits, system notes and shipbot's own notes
	}
	return command.Parse(n.Body).Outcome != command.OutcomeIgnore
}

// Handle runs a comment's command; the CommandWorker calls it. Network
// calls happen here, before the store transaction; the returned changes
// are pure; after replies once they are committed.
func (c *Commands) Handle(ctx context.Context, n *gitlabevent.Note) (func(*store.Tx) error, func(error)) {
	if !Wants(n) {
		return nil, nil
	}
	// The payload is only what its sender says: who wrote the comment, and
	// what it says, come from GitLab.
	log := c.Log.With("project", n.Project.Path, "mr", n.MergeRequest.IID, "note", n.ID)
	n, err := c.fromGitLab(ctx, n)
	if err != nil {
		log.Warn("comment not acted on: GitLab does not confirm it", "err", err)
		return nil, nil
	}
	res := command.Parse(n.Body)
	if res.Outcome == command.OutcomeIgnore || n.System {
		return nil, nil
	}
	log = log.With("user", n.User.Username)
	c.react(ctx, n, emojiSeen, log)
	if res.Outcome == command.OutcomeHelp {
		return nil, func(error) { c.reply(ctx, n, res.Reply, log) }
	}
	cmd := res.Command
	if cmd.Name == command.NamePlan {
		return nil, c.planCommand(ctx, n, log)
	}
	if cmd.Name != command.NamePreview && cmd.Name != command.NamePreviewStop {
		if c.Ops == nil || c.Releases == nil {
			return nil, func(error) {
				c.finish(ctx, n, fmt.Errorf("`%s`: staged releases are not available in this shipbot yet; nothing was done: %w", cmd, deployer.ErrInvalid), "", log)
			}
		}
		return nil, func(committed error) { c.releaseCommand(ctx, n, cmd, committed, log) }
	}
	if err := c.authorize(ctx, n); err != nil {
		log.Info("command refused", "command", cmd.String(), "err", err)
		return nil, func(error) { c.finish(ctx, n, err, "", log) }
	}
	previews, err := c.previewsAt(ctx, n)
	if err != nil {
		return nil, func(error) { c.finish(ctx, n, err, "", log) }
	}
	return c.previewCommand(ctx, n, cmd, previews, log)
}

// previewsAt is the Previewer that sees the apps of the merge request's
// head: a /preview redeploys what its commit declares.
func (c *Commands) previewsAt(ctx context.Context, n *gitlabevent.Note) (deployer.Previewer, error) {
	if c.Apps.Config == nil {
		return c.Previews, nil
	}
	mr, err := c.API.MergeRequest(ctx, n.Project.ID, n.MergeRequest.IID)
	if err != nil {
		return c.Previews, fmt.Errorf("could not read the merge request: %w", err)
	}
	cfg, err := c.Apps.At(ctx, n.Project.Path, mr.HeadSHA)
	if err != nil {
		return c.Previews, fmt.Errorf("%w: %w", deployer.ErrInvalid, err)
	}
	return deployer.Previewer{Config: cfg}, nil
}

// planCommand schedules a plan for a Developer or above, who may push.
func (c *Commands) planCommand(ctx context.Context, n *gitlabevent.Note, log *slog.Logger) func(error) {
	err := c.authorize(ctx, n)
	if err == nil && c.Plans == nil {
		err = fmt.Errorf("plans need the clusters, and this shipbot has none to ask: %w", deployer.ErrInvalid)
	}
	if err == nil && !c.Plans.Schedule(PlanRequest{ProjectID: n.Project.ID, Project: n.Project.Path, IID: n.MergeRequest.IID}) {
		err = fmt.Errorf("too many plans are waiting; try again in a minute: %w", deployer.ErrConflict)
	}
	return func(error) {
		log.Info("command", "command", "/plan", "err", err)
		c.finish(ctx, n, err, "Planning this merge request's head; the plan comment follows.", log)
	}
}

// fromGitLab returns n as GitLab has it: the author and body of note n.ID
// on n's merge request, read through the API. A forged Note Hook names a
// note that does not exist, or someone who did not write it.
func (c *Commands) fromGitLab(ctx context.Context, n *gitlabevent.Note) (*gitlabevent.Note, error) {
	got, err := c.API.MRNote(ctx, n.Project.ID, n.MergeRequest.IID, n.ID)
	if err != nil {
		return nil, err
	}
	out := *n
	out.Body, out.System = got.Body, got.System
	out.User = gitlabevent.User{ID: got.Author.ID, Username: got.Author.Username, Name: got.Author.Name}
	return &out, nil
}

// authorize checks the commenter holds at least Developer on the project.
func (c *Commands) authorize(ctx context.Context, n *gitlabevent.Note) error {
	level, err := c.API.AccessLevel(ctx, n.Project.ID, n.User.ID)
	if err != nil {
		return fmt.Errorf("could not check your access: %w", err)
	}
	if level < previewAccess {
		return fmt.Errorf("@%s needs at least %s access to %s to do this (has %s): %w",
			n.User.Username, previewAccess, n.Project.Path, level, deployer.ErrUnauthorized)
	}
	return nil
}

func (c *Commands) previewCommand(ctx context.Context, n *gitlabevent.Note, cmd command.Command, previews deployer.Previewer, log *slog.Logger) (func(*store.Tx) error, func(error)) {
	key := store.PreviewKey(n.Project.ID, n.MergeRequest.IID)
	var refused error
	changes := func(tx *store.Tx) error {
		var err error
		if cmd.Name == command.NamePreviewStop {
			err = previews.Stop(tx, key, deployer.StopCommand, c.Now())
		} else {
			err = previews.Redeploy(tx, key, n.User.Username, c.Now())
		}
		// A refused command must not fail the transaction: the comment is
		// handled, with a reply that says why.
		if errors.Is(err, deployer.ErrInvalid) {
			refused, err = err, nil
		}
		return err
	}
	after := func(committed error) {
		done := "Redeploying this merge request's preview; the comment above follows it."
		if cmd.Name == command.NamePreviewStop {
			done = "Removing this merge request's preview."
		}
		log.Info("command", "command", cmd.String(), "refused", refused, "err", committed)
		c.finish(ctx, n, cmp.Or(committed, refused), done, log) // a commit that failed refused nothing
	}
	return changes, after
}

// finish reacts and replies with the outcome.
func (c *Commands) finish(ctx context.Context, n *gitlabevent.Note, err error, done string, log *slog.Logger) {
	if err != nil {
		c.conclude(ctx, n, false, "❌ "+errkind.Text(err), log)
		return
	}
	c.conclude(ctx, n, true, "✅ "+done, log)
}

// conclude reacts with ✅ or ❌, then replies text.
func (c *Commands) conclude(ctx context.Context, n *gitlabevent.Note, ok bool, text string, log *slog.Logger) {
	c.react(ctx, n, map[bool]string{true: emojiDone, false: emojiNo}[ok], log)
	c.reply(ctx, n, text, log)
}

func (c *Commands) react(ctx context.Context, n *gitlabevent.Note, emoji string, log *slog.Logger) {
	if err := c.API.AwardMRNoteEmoji(ctx, n.Project.ID, n.MergeRequest.IID, n.ID, emoji); err != nil {
		log.Warn("award emoji", "emoji", emoji, "err", err)
	}
}

func (c *Commands) reply(ctx context.Context, n *gitlabevent.Note, body string, log *slog.Logger) {
	if _, err := c.API.CreateMRNote(ctx, n.Project.ID, n.MergeRequest.IID, "<!-- shipbot:reply -->\n"+body); err != nil {
		log.Warn("reply", "err", err)
	}
}

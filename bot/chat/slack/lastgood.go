package slack

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// The "Back to last good" buttons. The first, on a failed release's
// message, carries the project; it shows the clicker the plan, with a
// second button that carries the plan's digest and the project and applies
// exactly that plan.
const (
	actionLastGood        = actionPrefix + "last-good"
	actionLastGoodConfirm = actionPrefix + "last-good-confirm"
)

// LastGooder plans and applies going back to the last good versions;
// *ops.Service is it. Without it the button is not drawn.
type LastGooder interface {
	PlanLastGood(ctx context.Context, project, env string) ([]release.Restore, error)
	RestoreLastGood(ctx context.Context, a ops.Actor, project, env, digest, reason string) ([]release.Release, error)
}

var _ LastGooder = (*ops.Service)(nil)

// lastGoodButton is drawn on releases that failed, rolled back or were
// aborted: the moments someone wants everything back as it was.
func lastGoodButton(r release.Release) *slack.ButtonBlockElement {
	switch r.Phase {
	case release.Failed, release.RolledBack, release.Aborted:
	default:
		return nil
	}
	if r.Project == "" {
		return nil
	}
	return slack.NewButtonBlockElement(actionLastGood, r.Project, plain("Back to last good…"))
}

// parseLastGood reads a last-good button's value: the project, and the
// digest for the confirming one.
func parseLastGood(id, value string) (project, digest string, err error) {
	if id == actionLastGoodConfirm {
		digest, value, _ = strings.Cut(value, " ")
		if len(digest) != 12 {
			return "", "", fmt.Errorf("action %q: bad digest", id)
		}
	}
	if value == "" || len(value) > 255 || strings.ContainsAny(value, " <>&") {
		return "", "", fmt.Errorf("action %q: bad project %q", id, value)
	}
	return value, digest, nil
}

// lastGood answers a last-good click in the background, to the clicker
// only: the plan with a confirming button, or what confirming did.
func (d *dispatcher) lastGood(ctx context.Context, c click) {
	d.background(ctx, func(ctx context.Context) {
		text, blocks := d.lastGoodAnswer(ctx, c)
		if err := d.tellBlocks(ctx, c, text, blocks); err != nil {
			d.log.Warn("slack: answer last-good click", "user", c.userID, "err", err)
		}
	})
}

func (d *dispatcher) lastGoodAnswer(ctx context.Context, c click) (string, []slack.Block) {
	lg, ok := d.ops.(LastGooder)
	if !ok {
		return ":warning: Going back to last good versions is not available here.", nil
	}
	a, err := d.actor(ctx, c.userID)
	if err != nil {
		return explain(c, err), nil
	}
	if c.digest == "" {
		plan, err := lg.PlanLastGood(ctx, c.project, "")
		if err != nil {
			return explain(c, err), nil
		}
		return planBlocks(c.project, plan)
	}
	rels, err := lg.RestoreLastGood(ctx, a, c.project, "", c.digest, "from Slack")
	d.log.Info("slack: back to last good", "project", c.project, "user", c.userID, "actor", a.Username, "releases", len(rels), "err", err)
	if err != nil {
		if k := errkind.Of(err); k == errkind.Conflict || k == errkind.Forbidden || k == errkind.Invalid {
			return ":warning: Nothing was done: " + esc(errkind.Text(err)), nil
		}
		return explain(c, err), nil
	}
	lines := make([]string, 0, len(rels))
	for _, r := range rels {
		lines = append(lines, fmt.Sprintf("• `%s` %s in %s on %s", esc(r.ID), esc(r.App), esc(r.Environment), esc(r.Cluster)))
	}
	return ":rewind: Going back to the last good versions:\n" + strings.Join(lines, "\n"), nil
}

// planBlocks shows the plan per environment and cluster, and the button
// that confirms it.
func planBlocks(project string, plan []release.Restore) (string, []slack.Block) {
	var b strings.Builder
	fmt.Fprintf(&b, ":rewind: *Back to last good* for %s:", esc(project))
	work := false
	for _, rs := range plan {
		fmt.Fprintf(&b, "\n• %s on %s: %s `%s` → `%s`", esc(rs.Environment), esc(rs.Cluster), esc(rs.App), esc(revName(rs.Current)), esc(rs.Good.Name))
		if rs.Path == release.PathNone {
			b.WriteString(" (already serving it)")
			continue
		}
		work = true
		for _, line := range append(append([]string{rs.Diff.Image}, rs.Diff.Params...), rs.Diff.Objects...) {
			if line != "" {
				b.WriteString("\n    " + esc(truncate(line, 200)))
			}
		}
	}
	text := truncate(b.String(), 2900)
	if !work {
		return text + "\nNothing to do.", nil
	}
	confirm := slack.NewButtonBlockElement(actionLastGoodConfirm, release.PlanDigest(plan)+" "+project, plain("Go back to these versions")).
		WithStyle(slack.StyleDanger).
		WithConfirm(slack.NewConfirmationBlockObject(plain("Go back to the last good versions?"),
			mrkdwn("shipbot rolls back or re-releases every environment listed, in one stage."), plain("Go back"), plain("Cancel")))
	return text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil), slack.NewActionBlock("shipbot-last-good", confirm)}
}

// tellBlocks sends the clicker a message with blocks only they see.
func (d *dispatcher) tellBlocks(ctx context.Context, c click, text string, blocks []slack.Block) error {
	if len(blocks) == 0 {
		return d.tell(ctx, c, text)
	}
	if c.responseURL == "" {
		_, err := d.api.PostEphemeralContext(ctx, c.channelID, c.userID, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return wrap("chat.postEphemeral", err)
	}
	msg := &slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}, ResponseType: slack.ResponseTypeEphemeral}
	return wrap("response_url", slack.PostWebhookCustomHTTPContext(ctx, c.responseURL, d.http, msg))
}

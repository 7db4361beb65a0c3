package slack

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/deployer/release"
)

// messageBlocks renders a release's message. It reads only the release and now,
// so the golden tests cover it without Slack.
func messageBlocks(r release.Release, now time.Time) []slack.Block {
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(headline(r)), fields(r), nil),
		slack.NewContextBlock("", mrkdwn(esc(release.Describe(r, now)))),
	}
	if g := gates(r); g != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(g), nil, nil))
	}
	if p := pending(r); p != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(p)))
	}
	if bs := buttons(r); len(bs) > 0 {
		elems := make([]slack.BlockElement, len(bs))
		for i, b := range bs {
			elems[i] = b
		}
		blocks = append(blocks, slack.NewActionBlock(actionsBlockID, elems...))
	}
	return blocks
}

// messageOptions are the blocks and fallback text of a release's message.
func messageOptions(r release.Release, now time.Time) []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(messageText(r, now), true), slack.MsgOptionBlocks(messageBlocks(r, now)...)}
}

// messageText is the message's plain fallback, shown in notifications.
func messageText(r release.Release, now time.Time) string {
	return fmt.Sprintf("%s %s → %s on %s: %s", r.App, revName(r.From), r.To.Name, r.Environment, release.Describe(r, now))
}

const actionsBlockID = "shipbot-actions"

func headline(r release.Release) string {
	return fmt.Sprintf("%s *%s* `%s` → `%s`", phaseEmoji[r.Phase], esc(r.App), esc(revName(r.From)), esc(r.To.Name))
}

var phaseEmoji = map[release.Phase]string{
	release.Pending:     ":hourglass_flowing_sand:",
	release.Progressing: ":arrow_forward:",
	release.Verifying:   ":mag:",
	release.Paused:      ":double_vertical_bar:",
	release.RollingBack: ":rewind:",
	release.Succeeded:   ":white_check_mark:",
	release.RolledBack:  ":leftwards_arrow_with_hook:",
	release.Failed:      ":x:",
	release.Aborted:     ":no_entry_sign:",
}

func fields(r release.Release) []*slack.TextBlockObject {
	n := len(r.Stages)
	targets := make([]string, n)
	for i, s := range r.Stages {
		targets[i] = strings.TrimSuffix(s.Label(), " %") // a match or mirror stage says which
	}
	return []*slack.TextBlockObject{
		field("Environment", fmt.Sprintf("%s on %s", esc(r.Environment), esc(r.Cluster))),
		field("Stage", fmt.Sprintf("%d/%d (%s %s %%)", min(r.Stage+1, n), n, r.Strategy, strings.Join(targets, " → "))),
		field("Traffic", fmt.Sprintf("%d %% on `%s`", r.Percent, esc(r.To.Name))),
		field("Phase", string(r.Phase)),
		field("Started by", startedBy(r)),
		field("Release", fmt.Sprintf("`%s`", esc(r.ID))),
	}
}

func field(name, value string) *slack.TextBlockObject {
	return mrkdwn("*" + name + "*\n" + value)
}

func startedBy(r release.Release) string {
	who := "someone"
	if r.TriggeredBy != "" {
		who = esc(r.TriggeredBy)
	}
	switch {
	case r.PipelineID != 0 && r.WebURL != "":
		return fmt.Sprintf("%s · <%s|pipeline #%d>", who, esc(r.WebURL), r.PipelineID)
	case r.PipelineID != 0:
		return fmt.Sprintf("%s · pipeline #%d", who, r.PipelineID)
	}
	return who
}

// maxGates keeps the gates section well under Slack's 3,000 characters.
const maxGates = 8

// gates lists the latest stage's gate results, one line each.
func gates(r release.Release) string {
	latest := -1
	for _, c := range r.Checks {
		latest = max(latest, c.Stage)
	}
	var lines []string
	for _, c := range r.Checks {
		if c.Stage != latest || len(lines) == maxGates {
			continue
		}
		line := fmt.Sprintf("%s %s gate *%s*", checkEmoji[c.Status], c.When, esc(c.Gate))
		if c.Message != "" {
			line += ": " + esc(truncate(c.Message, 150))
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("*Gates, stage %d*\n%s", latest+1, strings.Join(lines, "\n"))
}

var checkEmoji = map[release.CheckStatus]string{
	release.CheckRunning: ":hourglass_flowing_sand:",
	release.CheckPassed:  ":white_check_mark:",
	release.CheckFailed:  ":x:",
}

// pending says which recorded intents the engine has not acted on yet.
func pending(r release.Release) string {
	var lines []string
	for _, in := range r.Intents {
		if in.Done.IsZero() {
			lines = append(lines, fmt.Sprintf(":hourglass: %s requested by %s via %s", in, esc(in.Actor), in.Surface))
		}
	}
	return strings.Join(lines, "\n")
}

// buttons are the actions the release's phase allows now, in the order a
// person reads them: forward, then stop. While traffic moves only the
// stopping actions show; while paused, the forward ones too. Each is also
// checked against the engine's own rules, so a button never offers what
// recording would refuse.
func buttons(r release.Release) []*slack.ButtonBlockElement {
	var out []*slack.ButtonBlockElement
	for _, in := range candidates(r) {
		if !allowed(r, in) {
			continue
		}
		in.Drawn = r.Stage + 1
		b := slack.NewButtonBlockElement(actionID(in.Kind), actionValue(r.ID, in), plain(label(in)))
		switch in.Kind {
		case release.IntentContinue:
			b = b.WithStyle(slack.StylePrimary)
		case release.IntentRollback:
			b = b.WithStyle(slack.StyleDanger)
		case release.IntentAbort:
			b = b.WithStyle(slack.StyleDanger).WithConfirm(abortConfirm(r))
		}
		if in.Kind == release.IntentRollback || in.Kind == release.IntentAbort {
			out = appendRatio(out, r)
		}
		out = append(out, b)
	}
	out = appendRatio(out, r)
	if b := lastGoodButton(r); b != nil {
		out = append(out, b)
	}
	return out
}

// appendRatio adds the "Set ratio…" button, once, after the forward ones.
func appendRatio(out []*slack.ButtonBlockElement, r release.Release) []*slack.ButtonBlockElement {
	b := ratioButton(r)
	if b == nil || slices.ContainsFunc(out, func(x *slack.ButtonBlockElement) bool { return x.ActionID == ratioAction }) {
		return out
	}
	return append(out, b)
}

// nextWeight is the first stage after the current one that sets a weight,
// which a promote can name; match and mirror stages cannot be promoted to.
func nextWeight(r release.Release) int {
	k := r.Stage + 1
	for k < len(r.Stages) && r.Stages[k].Routes() {
		k++
	}
	return k
}

// candidates are the intents the surface offers in r's phase.
func candidates(r release.Release) []release.Intent {
	stop := []release.Intent{{Kind: release.IntentRollback}, {Kind: release.IntentAbort}}
	switch r.Phase {
	case release.Paused:
		// Continue starts stage Stage; the promotes jump past it, to the next
		// stage and to the last, when those are different stages.
		fwd := []release.Intent{{Kind: release.IntentContinue}}
		last := len(r.Stages) - 1
		if next := nextWeight(r); next < last {
			fwd = append(fwd, release.Intent{Kind: release.IntentPromote, Percent: r.Stages[next].Target})
		}
		if r.Stage < last {
			fwd = append(fwd, release.Intent{Kind: release.IntentPromoteFull})
		}
		return append(fwd, stop...)
	case release.Pending, release.Progressing, release.Verifying:
		return append([]release.Intent{{Kind: release.IntentPause}}, stop...)
	case release.RollingBack:
		return []release.Intent{{Kind: release.IntentAbort}}
	}
	return nil
}

// allowed asks the release's own rules whether in could be recorded now,
// on a copy that shares nothing the check writes.
func allowed(r release.Release, in release.Intent) bool {
	probe := r
	probe.Intents, probe.History = nil, nil
	in.Actor, in.Surface, in.At = "probe", release.SurfaceSlack, time.Unix(1, 0)
	return probe.Record(in) == nil
}

func label(in release.Intent) string {
	switch in.Kind {
	case release.IntentPromote:
		return fmt.Sprintf("Promote to %d%%", in.Percent)
	case release.IntentPromoteFull:
		return "Promote to 100%"
	}
	return strings.ToUpper(string(in.Kind[:1])) + string(in.Kind[1:])
}

func abortConfirm(r release.Release) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(
		plain("Abort this release?"),
		mrkdwn(fmt.Sprintf("shipbot stops *%s* now and leaves the cluster as it is: %d %% on `%s`. Nothing is rolled back.", esc(r.App), r.Percent, esc(r.To.Name))),
		plain("Abort"), plain("Cancel"),
	).WithStyle(slack.StyleDanger)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// esc escapes the three characters Slack's mrkdwn reserves.
func esc(s string) string {
	return markup.Slack(s)
}

// codeBlock puts text in a Slack code block it cannot leave: Slack ends a
// block at the next ```, so each backtick in text is shown as ˋ (U+02CB).
func codeBlock(text string) string {
	return "```" + esc(strings.ReplaceAll(text, "`", "ˋ")) + "```"
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func revName(v release.Revision) string {
	if v.IsZero() {
		return "nothing"
	}
	return v.Name
}

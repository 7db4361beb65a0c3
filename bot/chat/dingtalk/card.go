package dingtalk

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/deployer/release"
)

// Card is what a release event says in chat, before its buttons become links.
type Card struct {
	Title   string
	Text    string
	Actions []Action // Release, Kind, Percent and Stage set; Issue adds the rest
}

// NewCard describes a release event: app, revisions, environment, stage,
// percent, phase, gate results, and the actions the release takes now.
func NewCard(e release.Event) Card {
	r := e.Release
	var b strings.Builder
	md := markup.Markdown
	fmt.Fprintf(&b, "### %s %s → %s · %s\n\n", md(r.App), md(revision(r.From)), md(r.To.Name), md(r.Environment))
	// Describe's summary already says stage n/m and the percentage.
	summary := e.Summary
	if summary == "" {
		n := len(r.Stages)
		summary = fmt.Sprintf("stage %d/%d · %d %%", min(r.Stage+1, n), n, r.Percent)
	}
	fmt.Fprintf(&b, "**%s** · %s\n\n", r.Phase, md(summary))
	if e.Message != "" {
		fmt.Fprintf(&b, "> %s: %s\n\n", e.Reason, md(e.Message))
	} else {
		fmt.Fprintf(&b, "> %s\n\n", e.Reason)
	}
	if g := gates(r); g != "" {
		fmt.Fprintf(&b, "- gates: %s\n", g)
	}
	fmt.Fprintf(&b, "- %s\n", strings.Join(origin(r), " · "))
	fmt.Fprintf(&b, "- release %s · %s\n", r.ID, e.At.UTC().Format(time.DateTime+" MST"))
	return Card{
		Title:   fmt.Sprintf("%s %s: %s", r.App, r.Environment, r.Phase),
		Text:    b.String(),
		Actions: Actions(r, e.At),
	}
}

// linkTarget keeps a URL inside the parentheses of a Markdown link.
var linkTarget = strings.NewReplacer("(", "%28", ")", "%29", " ", "%20", "<", "%3C", ">", "%3E")

func revision(v release.Revision) string {
	if v.IsZero() {
		return "(first release)"
	}
	return v.Name
}

// gates lists the checks of the stage the release is at, e.g.
// "✅ after smoke · ❌ after latency (p99 1.2s > 1s)".
func gates(r release.Release) string {
	stage := min(r.Stage, len(r.Stages)-1)
	var out []string
	for _, c := range r.Checks {
		if c.Stage != stage {
			continue
		}
		mark := "⏳"
		switch c.Status {
		case release.CheckPassed:
			mark = "✅"
		case release.CheckFailed:
			mark = "❌"
		}
		s := fmt.Sprintf("%s %s %s", mark, c.When, markup.Markdown(c.Gate))
		if c.Status == release.CheckFailed && c.Message != "" {
			s += " (" + markup.Markdown(c.Message) + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " · ")
}

func origin(r release.Release) []string {
	out := []string{"project " + markup.Markdown(r.Project), "cluster " + markup.Markdown(r.Cluster)}
	if r.TriggeredBy != "" {
		out = append(out, "by "+markup.Markdown(r.TriggeredBy))
	}
	switch {
	case r.PipelineID != 0 && r.WebURL != "":
		out = append(out, fmt.Sprintf("[pipeline #%d](%s)", r.PipelineID, linkTarget.Replace(r.WebURL)))
	case r.PipelineID != 0:
		out = append(out, fmt.Sprintf("pipeline #%d", r.PipelineID))
	}
	return out
}

// Actions lists what a person can ask of r now, in button order: continue,
// promote to each later intermediate stage, promote to 100 %, pause, roll
// back, abort. The release's own Record decides, on a copy, so buttons never
// offer what the engine would refuse.
func Actions(r release.Release, now time.Time) []Action {
	var candidates []Action
	add := func(kind release.IntentKind, percent int) {
		candidates = append(candidates, Action{Release: r.ID, Kind: kind, Percent: percent, Stage: r.Stage})
	}
	add(release.IntentContinue, 0)
	for k := r.Stage + 1; k < len(r.Stages)-1; k++ {
		if !r.Stages[k].Routes() { // match and mirror stages cannot be promoted to
			add(release.IntentPromote, r.Stages[k].Target)
		}
	}
	if r.Stage < len(r.Stages)-1 { // at the last stage, continue is the same
		add(release.IntentPromoteFull, 0)
	}
	if r.AnyWeight && r.Phase == release.Paused {
		candidates = append(candidates, Action{Release: r.ID, Kind: release.IntentPromote, Ask: true, Stage: r.Stage})
	}
	add(release.IntentPause, 0)
	add(release.IntentRollback, 0)
	add(release.IntentAbort, 0)
	var out []Action
	for _, a := range candidates {
		if allowed(r, a, now) == nil {
			out = append(out, a)
		}
	}
	return out
}

// allowed says whether r, as it is, would record a's intent.
func allowed(r release.Release, a Action, now time.Time) error {
	c := r
	c.Intents = slices.Clone(r.Intents)
	c.History = slices.Clone(r.History)
	in := a.Intent()
	if a.Ask && in.Percent == 0 {
		in.Percent = 100 // the page asks for it; any percent the release takes will do
	}
	in.Actor, in.Surface, in.At = "check", release.SurfaceDingTalk, now
	return c.Record(in)
}

package release

import (
	"fmt"
	"strings"
	"time"
)

// Describe says in one line where a release stands, e.g.
// "stage 2/3 · 10 % · waiting for approval 12m". It reads only the release
// and now, so chat messages, MR comments and the dashboard all agree.
func Describe(r Release, now time.Time) string {
	s := describe(r, now)
	if r.Hold != nil && !r.Phase.Terminal() {
		s += " · " + r.Hold.Message
	}
	return s
}

func describe(r Release, now time.Time) string {
	n := len(r.Stages)
	where := fmt.Sprintf("stage %d/%d · %d %%", min(r.Stage+1, n), n, r.Percent) + routesInEffect(r)
	switch r.Phase {
	case Pending:
		return fmt.Sprintf("pending · %s %s → %s in %d stages (%s %%)", strategyLabel(r), revName(r.From), r.To.Name, n, plan(r))
	case Progressing:
		return where + " · " + describeProgress(r, now)
	case Verifying:
		if c := r.runningCheck(); c != nil {
			return where + " · " + describeCheck(c, now)
		}
		return where + " · verifying"
	case Paused:
		return where + " · " + describePause(r, now)
	case RollingBack:
		return where + " · rolling back to " + revName(r.From) + because(r.Reason)
	case Succeeded:
		return fmt.Sprintf("succeeded · 100 %% on %s · took %s", r.To.Name, span(r.Created, r.Updated))
	case RolledBack:
		return fmt.Sprintf("rolled back to %s at stage %d/%d%s", revName(r.From), min(r.Stage+1, n), n, because(r.Reason))
	case Failed:
		return "failed at " + where + because(r.Reason)
	case Aborted:
		return "aborted at " + where + because(r.Reason)
	}
	return where + " · " + string(r.Phase)
}

func describeProgress(r Release, now time.Time) string {
	if r.Stage >= len(r.Stages) {
		return "finishing: scaling " + revName(r.From) + " down"
	}
	c := r.runningCheck()
	switch {
	case c != nil && c.When == Before:
		return describeCheck(c, now)
	case c != nil && c.When == Pods:
		return fmt.Sprintf("→ %s · %s %s", r.Stages[r.Stage].Label(), orText(c.Message, "waiting for pods"), span(c.Started, now))
	}
	return "→ " + r.Stages[r.Stage].Label()
}

// strategyLabel is the strategy, with a canary's scale when it is not
// the default: "canary (matchTraffic)".
func strategyLabel(r Release) string {
	if r.matchesTraffic() {
		return fmt.Sprintf("%s (%s)", r.Strategy, r.CanaryScale)
	}
	return string(r.Strategy)
}

// plan lists the stages, e.g. "header x-canary=true → 10 → 100".
func plan(r Release) string {
	out := make([]string, len(r.Stages))
	for i, s := range r.Stages {
		out[i] = strings.TrimSuffix(s.Label(), " %")
	}
	return strings.Join(out, " → ")
}

// routesInEffect names the header route or mirror that stays in effect
// from the stage being verified, or the one done last, e.g.
// " + mirror 20 %"; "" when there is none.
func routesInEffect(r Release) string {
	k := r.Stage - 1
	if r.Phase == Verifying {
		k = r.Stage
	}
	if r.Phase.Terminal() || r.Phase == RollingBack || k < 0 || k >= len(r.Stages) || !r.Stages[k].Routes() {
		return ""
	}
	return " + " + r.Stages[k].Label()
}

func describeCheck(c *Check, now time.Time) string {
	s := fmt.Sprintf("%s gate %s", c.When, c.Gate)
	if c.Runs > 0 {
		s += fmt.Sprintf(", run %d", c.Runs)
	}
	if c.Failures > 0 {
		s += fmt.Sprintf(", %d failed", c.Failures)
	}
	return s + " " + span(c.Started, now)
}

// describePause derives why a release is paused from its last transition
// and its checks: a failed gate, a person, or a manual stage.
func describePause(r Release, now time.Time) string {
	since, actor := r.Updated, EngineActor
	for i := len(r.History) - 1; i >= 0; i-- {
		if e := r.History[i]; e.Kind == EntryTransition && e.Phase == Paused {
			since, actor = e.At, e.Actor
			break
		}
	}
	for _, c := range r.Checks {
		if c.Stage == r.Stage && c.Status == CheckFailed {
			return fmt.Sprintf("paused: gate %s failed (%s) %s", c.Gate, c.Message, span(since, now))
		}
	}
	if actor != EngineActor {
		return fmt.Sprintf("paused by %s %s", actor, span(since, now))
	}
	if r.Stage >= len(r.Stages) {
		return "waiting for approval to finish " + span(since, now)
	}
	return "waiting for approval " + span(since, now)
}

func revName(v Revision) string {
	if v.IsZero() {
		return "nothing"
	}
	return v.Name
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " · " + reason
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// span formats the time from a to b the way people say it: 45s, 12m, 3h5m, 2d4h.
func span(a, b time.Time) string {
	d := b.Sub(a)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return trimZero(fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute)))
	}
	return trimZero(fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)))
}

func trimZero(s string) string {
	if strings.HasSuffix(s, "h0m") || strings.HasSuffix(s, "d0h") {
		return s[:len(s)-2]
	}
	return s
}

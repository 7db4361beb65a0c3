// Package mergerequest is shipbot's merge request face: the one comment per merge
// request that tracks its preview, the GitLab review environment, the
// comment commands, and the reconciler that trusts GitLab's API over its
// webhooks.
package mergerequest

import (
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/bot/markup"
	"github.com/shipbot/shipbot/deployer/store"
)

// marker lets a person (and shipbot) tell shipbot's comment apart.
const marker = "<!-- shipbot:preview -->"

// Comment renders the merge request comment for a preview's state. It is a
// pure function of the record, so the comment says the same whoever edits it.
func Comment(p store.Preview) string {
	var b strings.Builder
	b.WriteString(marker + "\n")
	sha := short(p.HeadSHA)
	switch {
	case p.Status == store.PreviewStopped || p.Status == store.PreviewStopping:
		fmt.Fprintf(&b, "⏹️ **Preview %s** (%s).", map[bool]string{true: "stopped", false: "stopping"}[p.Status == store.PreviewStopped], stopText(p.StopReason))
		if p.MRState == "opened" {
			b.WriteString(" Comment `/preview` to bring it back.")
		}
	case p.Status == store.PreviewReady:
		fmt.Fprintf(&b, "✅ **Preview ready**: %s\n\n", p.URL)
		fmt.Fprintf(&b, "| commit | namespace |\n|---|---|\n| `%s` | `%s` |", short(p.DeployedSHA), p.Namespace)
	case p.Status == store.PreviewFailed:
		fmt.Fprintf(&b, "❌ **Preview failed** for `%s`:\n\n%s\n\nPush a fix or comment `/preview` to retry.", sha, markup.Block(p.Reason))
	case p.Status == store.PreviewDeploying:
		fmt.Fprintf(&b, "🚀 **Deploying preview** of `%s` to namespace `%s`…", sha, p.Namespace)
	default:
		b.WriteString("⏳ **Preview** waits for a successful pipeline.")
	}
	if p.MRState == "opened" {
		b.WriteString("\n\n<sub>shipbot · `/preview` redeploys · `/preview stop` removes it · `/help`</sub>")
	}
	return b.String()
}

func stopText(reason string) string {
	switch reason {
	case "merged":
		return "merge request merged"
	case "closed":
		return "merge request closed"
	case "deleted":
		return "merge request deleted"
	case "ttl":
		return "idle past its time to live"
	case "command":
		return "stopped by `/preview stop`"
	}
	return reason
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// EnvironmentName is the GitLab environment of a merge request's preview.
func EnvironmentName(iid int64) string { return fmt.Sprintf("review/mr-%d", iid) }

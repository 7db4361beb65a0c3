// Package command turns merge request comments into shipbot commands.
//
// A comment is data: Parse decides whether to run a command, reply with help,
// or ignore the comment, and never acts itself. The command set is a closed
// allowlist so that GitLab quick actions and other bots' commands pass through.
package command

import (
	"strconv"
	"strings"
)

// Name identifies a command. Names are stored and sent as these strings, so
// they must never be renumbered or renamed.
type Name string

// The commands shipbot knows.
const (
	NamePreview     Name = "preview"
	NamePreviewStop Name = "preview-stop"
	NamePromote     Name = "promote"
	NameContinue    Name = "continue"
	NamePause       Name = "pause"
	NameRollback    Name = "rollback"
	NameAbort       Name = "abort"
	NameStatus      Name = "status"
	NameHelp        Name = "help"
	NamePlan        Name = "plan"
	NameLock        Name = "lock"    // lock an environment for the commenter
	NameUnlock      Name = "unlock"  // release, or break, an environment's lock
	NameRelease     Name = "release" // /release --force-freeze: release through a freeze
	NameDeploy      Name = "deploy"  // release a given tag or commit to an environment
)

// Known reports whether n is one of the command names above.
func (n Name) Known() bool {
	switch n {
	case NamePreview, NamePreviewStop, NamePromote, NameContinue, NamePause,
		NameRollback, NameAbort, NameStatus, NameHelp, NamePlan, NameLock, NameUnlock, NameRelease, NameDeploy:
		return true
	}
	return false
}

// Command is one parsed command.
type Command struct {
	Name    Name   `json:"name"`
	Percent int    `json:"percent,omitempty"` // promote only: 1..100, and 100 when Full
	Full    bool   `json:"full,omitempty"`    // promote only: /promote full
	Target  string `json:"target,omitempty"`  // environment or release id; empty means the merge request's own
	Reason  string `json:"reason,omitempty"`  // lock and release --force-freeze: why, kept in the audit history
	Ref     string `json:"ref,omitempty"`     // deploy only: the tag or commit to release
	Digest  string `json:"digest,omitempty"`  // rollback last-good only: the plan confirmed
}

// String returns the canonical comment for c, e.g. "/promote 50 prod1";
// Parse(c.String()) gives c back for every command Parse runs.
func (c Command) String() string {
	var b strings.Builder
	b.WriteByte('/')
	switch c.Name {
	case NamePreviewStop:
		b.WriteString("preview stop")
	case NamePromote:
		b.WriteString("promote ")
		if c.Full {
			b.WriteString("full")
		} else {
			b.WriteString(strconv.Itoa(c.Percent))
		}
	case NameDeploy:
		b.WriteString("deploy " + c.Ref + " to " + c.Target)
		return b.String()
	case NameRelease:
		b.WriteString("release")
		if c.Target != "" {
			b.WriteString(" " + c.Target)
		}
		b.WriteString(` --force-freeze "` + c.Reason + `"`)
		return b.String()
	default:
		b.WriteString(string(c.Name))
	}
	if c.Target != "" {
		b.WriteByte(' ')
		b.WriteString(c.Target)
	}
	if c.Reason != "" {
		b.WriteString(` "` + c.Reason + `"`)
	}
	if c.Digest != "" {
		b.WriteString(" " + c.Digest)
	}
	return b.String()
}

// Outcome is what the bot should do with a comment.
type Outcome string

// The three outcomes of Parse.
const (
	OutcomeRun    Outcome = "run"    // run Result.Command
	OutcomeHelp   Outcome = "help"   // reply with Result.Reply
	OutcomeIgnore Outcome = "ignore" // the comment is not for shipbot; stay silent
)

// Result is the outcome of parsing one comment.
type Result struct {
	Outcome Outcome `json:"outcome"`
	// Command is the command to run; for help it names the command the
	// comment was about, when there was one, so that it can be logged.
	Command Command `json:"command"`
	// Reply is the markdown to post for help: the problem first, when there
	// was one, then the usage. It quotes user text only as short words of
	// letters, digits and ".,:;!?-_%+" in code spans, so it mentions no one.
	Reply string `json:"reply,omitempty"`
}

// entry is one command word as users type it.
type entry struct {
	word  string
	usage string // markdown list items, one line per form
	parse func(args []string) (Command, string)
}

// commands is the allowlist, in the order Help lists it.
var commands = []entry{
	{"preview", "- `/preview` — redeploy this merge request's preview\n" +
		"- `/preview stop` — tear this merge request's preview down now", parsePreview},
	{"promote", "- `/promote <percent> [target]` — send that share of traffic to the new version (1 to 100, `%` optional)\n" +
		"- `/promote full [target]` — promote the new version all the way", parsePromote},
	{"continue", "- `/continue [target]` — resume a paused release", targeted(NameContinue)},
	{"pause", "- `/pause [target]` — hold the release at its current step", targeted(NamePause)},
	{"rollback", "- `/rollback [target]` — go back to the previous version\n" +
		"- `/rollback last-good` — show what putting back each environment's last good version changes; `/rollback last-good <digest>` does it", parseRollback},
	{"abort", "- `/abort [target]` — stop the release and send all traffic back to the stable version", targeted(NameAbort)},
	{"status", "- `/status [target]` — show where the release stands", targeted(NameStatus)},
	{"plan", "- `/plan` — show what merging this merge request would change in each environment its target branch deploys to", parsePlan},
	{"lock", "- `/lock <environment> \"reason\"` — hold the environment: only you can deploy or move releases there until you unlock it", parseLock},
	{"unlock", "- `/unlock <environment>` — release your lock; a Maintainer can break someone else's", parseUnlock},
	{"release", "- `/release [target] --force-freeze \"reason\"` — release through a freeze (Maintainer; kept in the release's history)", parseRelease},
	{"deploy", "- `/deploy <tag or commit> to <environment>` — release that build, whose pipeline must have succeeded", parseDeploy},
	{"help", "- `/help` — show this list", parseHelp},
}

const helpHeader = "**shipbot commands.** Write one at the start of a comment; " +
	"each also works as `/shipbot <command>`, e.g. `/shipbot status`.\n\n"

const helpFooter = "\n\nA target names an environment or a release, e.g. `prod1` or `r000000000012`: " +
	"lowercase letters, digits and `-`. Leave it out to act on this merge request's release."

// Help returns the markdown list of every command, for /help and for errors.
func Help() string {
	var b strings.Builder
	b.WriteString(helpHeader)
	for i, e := range commands {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.usage)
	}
	b.WriteString(helpFooter)
	return b.String()
}

// lookup finds the entry for a command word, ignoring ASCII case.
func lookup(word string) (entry, bool) {
	word = lowerASCII(word)
	for _, e := range commands {
		if e.word == word {
			return e, true
		}
	}
	return entry{}, false
}

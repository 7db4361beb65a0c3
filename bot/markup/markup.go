// Package markup makes text that people or repositories supplied safe to put
// into the markup of each surface shipbot writes to: GitLab Flavored
// Markdown for merge request comments, DingTalk's Markdown for cards, and
// Slack's mrkdwn. Text shown through these functions is shown as written; it
// cannot add a link, a mention, a heading or leave the block it is in.
package markup

import "strings"

// markdown escapes, with a backslash, every ASCII punctuation character
// that can open markup in CommonMark or a reference in GitLab (@user, #1,
// !2, ~label, $3). Line breaks become spaces so a text cannot start a
// heading, a list or a quote of its own. Characters that only matter at the
// start of a line (".", "-", "+", ">") stay as they are, since the text never
// starts one.
var markdown = strings.NewReplacer(
	"\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]",
	"<", "\\<", "|", "\\|", "~", "\\~", "@", "\\@", "#", "\\#",
	"!", "\\!", "$", "\\$", "&", "\\&",
	"\r\n", " ", "\n", " ", "\r", " ",
)

// Markdown escapes s for a line of GitLab or DingTalk Markdown.
func Markdown(s string) string { return markdown.Replace(s) }

// Code returns s as an inline code span it cannot leave: the fence is one
// backtick longer than the longest run of backticks in s, and line breaks
// become spaces, as CommonMark does inside a span anyway.
func Code(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	longest := backticks(s)
	fence := strings.Repeat("`", longest+1)
	if longest > 0 || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		// CommonMark strips one space on each side when both are there, so a
		// span may start or end with a backtick.
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// Block returns s as a fenced code block it cannot leave: the fence is
// longer than any run of backticks in s.
func Block(s string) string {
	fence := strings.Repeat("`", max(3, backticks(s)+1))
	return fence + "\n" + strings.TrimRight(s, "\n") + "\n" + fence
}

// slack escapes the three characters Slack's mrkdwn gives meaning to
// (links, mentions and channels all start with "<").
var slack = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Slack escapes s for Slack's mrkdwn.
func Slack(s string) string { return slack.Replace(s) }

// backticks is the length of the longest run of backticks in s.
func backticks(s string) int {
	run, longest := 0, 0
	for _, c := range s {
		if c != '`' {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}

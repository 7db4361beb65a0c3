package command

import (
	"fmt"
	"strconv"
	"strings"
)

// maxTarget is the longest DNS-1123 label.
const maxTarget = 63

// targetExamples ends every message about a bad target.
const targetExamples = "targets name an environment or a release, like `prod1` or `r000000000012`."

func parsePreview(args []string) (Command, string) {
	switch {
	case len(args) == 0:
		return Command{Name: NamePreview}, ""
	case lowerASCII(args[0]) != "stop":
		problem := "`/preview` takes no argument but `stop`."
		if isSafe(args[0]) {
			problem = fmt.Sprintf("`/preview` takes no argument but `stop`, not `%s`.", args[0])
		}
		if len(args) == 1 && distance(lowerASCII(args[0]), "stop") == 1 {
			problem += " Did you mean `/preview stop`?"
		}
		return Command{Name: NamePreview}, problem
	case len(args) > 1:
		return Command{Name: NamePreviewStop}, "`/preview stop` takes no more arguments."
	}
	return Command{Name: NamePreviewStop}, ""
}

func parsePlan(args []string) (Command, string) {
	if len(args) > 0 {
		return Command{Name: NamePlan}, "`/plan` takes no arguments: it plans this merge request's head."
	}
	return Command{Name: NamePlan}, ""
}

func parsePromote(args []string) (Command, string) {
	c := Command{Name: NamePromote}
	if len(args) == 0 {
		return c, "`/promote` needs a percentage from 1 to 100, or `full`."
	}
	// "/promote 50 %" is how some keyboards and languages write 50%.
	if len(args) > 1 && args[1] == "%" && allDigits(args[0]) {
		args = append([]string{args[0]}, args[2:]...)
	}
	if lowerASCII(args[0]) == "full" {
		c.Full, c.Percent = true, 100
	} else {
		pct, problem := parsePercent(args[0])
		if problem != "" {
			return c, problem
		}
		c.Percent = pct
	}
	rest := args[1:]
	switch {
	case len(rest) == 0:
		return c, ""
	case isPercentLike(rest[0]):
		return c, "`/promote` takes one percentage; " + quoted(rest[0], "the next word") + " looks like a second one."
	case lowerASCII(rest[0]) == "full":
		return c, "`/promote` takes a percentage or `full`, not both."
	case len(rest) > 1:
		return c, "`/promote` takes a percentage and at most one target."
	}
	c.Target = rest[0]
	return c, checkTarget(c.Target)
}

// parsePercent reads "50" or "50%" as a whole percentage from 1 to 100.
func parsePercent(s string) (int, string) {
	digits := strings.TrimSuffix(s, "%")
	if !allDigits(digits) {
		problem := quoted(s, "That") + " is not a percentage: use a whole number from 1 to 100, or `full`."
		if distance(lowerASCII(s), "full") == 1 {
			problem += " Did you mean `full`?"
		}
		return 0, problem
	}
	// Leading zeros are harmless; dropping them keeps Atoi from overflowing.
	digits = strings.TrimLeft(digits, "0")
	if n, err := strconv.Atoi(digits); err == nil && len(digits) <= 3 && n >= 1 && n <= 100 {
		return n, ""
	}
	return 0, quoted(s, "That percentage") + " is out of range: use a whole number from 1 to 100."
}

// targeted parses the commands whose only argument is an optional target.
func targeted(name Name) func([]string) (Command, string) {
	return func(args []string) (Command, string) {
		c := Command{Name: name}
		switch len(args) {
		case 0:
			return c, ""
		case 1:
			c.Target = args[0]
			return c, checkTarget(c.Target)
		}
		return c, fmt.Sprintf("`/%s` takes at most one target.", name)
	}
}

// parseHelp ignores arguments: whatever follows /help, the list answers it.
func parseHelp([]string) (Command, string) { return Command{Name: NameHelp}, "" }

// checkTarget returns what is wrong with a target, or "". A target is a
// DNS-1123 label that is not a bare number, which would more likely be a
// misplaced percentage than a name.
func checkTarget(s string) string {
	if isPercentLike(s) {
		return quoted(s, "That") + " is not a target: " + targetExamples
	}
	if len(s) > maxTarget {
		return fmt.Sprintf("That target is too long: a target has at most %d characters, and %s", maxTarget, targetExamples)
	}
	if lower := lowerASCII(s); lower != s && isLabel(lower) {
		return fmt.Sprintf("Targets are lowercase: write `%s`, not `%s`.", lower, s)
	}
	if !isLabel(s) {
		return quoted(s, "That") + " is not a valid target: use lowercase letters, digits and `-`; " + targetExamples
	}
	return ""
}

// isLabel reports whether s is a DNS-1123 label: 1 to 63 lowercase letters,
// digits and '-', starting and ending with a letter or digit.
func isLabel(s string) bool {
	if s == "" || len(s) > maxTarget || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isPercentLike reports whether s reads as a number, with or without '%'.
func isPercentLike(s string) bool { return allDigits(strings.TrimSuffix(s, "%")) }

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

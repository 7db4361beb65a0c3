package command

import (
	"fmt"
	"strings"
	"unicode"
)

// maxReason bounds a lock's or an override's reason, which replies and
// chat messages quote.
const maxReason = 200

// flagForceFreeze is the one flag /release takes.
const flagForceFreeze = "--force-freeze"

// parseLock reads `/lock <environment> "reason"`; the reason is optional.
func parseLock(args []string) (Command, string) {
	c := Command{Name: NameLock}
	if len(args) == 0 {
		return c, "`/lock` needs an environment, e.g. `/lock prod2 \"db migration\"`."
	}
	c.Target = args[0]
	if problem := checkTarget(c.Target); problem != "" {
		return c, problem
	}
	reason, problem := parseReason(args[1:])
	c.Reason = reason
	return c, problem
}

// parseUnlock reads `/unlock <environment>`.
func parseUnlock(args []string) (Command, string) {
	c := Command{Name: NameUnlock}
	if len(args) != 1 {
		return c, "`/unlock` takes one environment, e.g. `/unlock prod2`."
	}
	c.Target = args[0]
	return c, checkTarget(c.Target)
}

// parseRelease reads `/release [target] --force-freeze "reason"`.
func parseRelease(args []string) (Command, string) {
	c := Command{Name: NameRelease}
	if len(args) > 0 && args[0] != flagForceFreeze {
		c.Target = args[0]
		if problem := checkTarget(c.Target); problem != "" {
			return c, problem
		}
		args = args[1:]
	}
	if len(args) == 0 || args[0] != flagForceFreeze {
		return c, "`/release` takes `--force-freeze \"reason\"`: it releases through a freeze, and says why."
	}
	reason, problem := parseReason(args[1:])
	if problem == "" && reason == "" {
		problem = "`/release --force-freeze` needs a reason in quotes; it is kept in the release's history."
	}
	c.Reason = reason
	return c, problem
}

// parseDeploy reads `/deploy <tag or commit> to <environment>`.
func parseDeploy(args []string) (Command, string) {
	c := Command{Name: NameDeploy}
	if len(args) != 3 || lowerASCII(args[1]) != "to" {
		return c, "`/deploy` takes a tag or commit and an environment, e.g. `/deploy v1.3.0 to prod2`."
	}
	if !isRef(args[0]) {
		return c, quoted(args[0], "That") + " is not a tag or commit: use letters, digits and `.`, `_`, `-`, `/`."
	}
	c.Ref, c.Target = args[0], args[2]
	return c, checkTarget(c.Target)
}

// parseReason joins the words of a reason and drops one pair of quotes
// around it. It refuses characters that could mention someone or break
// out of the Markdown that replies quote the reason in.
func parseReason(words []string) (string, string) {
	s := strings.Join(words, " ")
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {"'", "'"}} {
		if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
			s = s[len(q[0]) : len(s)-len(q[1])]
			break
		}
	}
	s = strings.TrimSpace(s)
	switch {
	case len(s) > maxReason:
		return "", fmt.Sprintf("The reason is too long: at most %d bytes.", maxReason)
	case strings.ContainsAny(s, "@`<>[]\"\\"):
		return "", "A reason may not contain at-signs, quotes inside it, backticks, brackets or backslashes."
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", "A reason may not contain control characters."
	}
	return s, ""
}

// isRef reports whether s can name a tag or commit: 1 to 100 letters,
// digits, '.', '_', '-' and '/', not starting with '-' or '/'.
func isRef(s string) bool {
	if s == "" || len(s) > 100 || s[0] == '-' || s[0] == '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !(c >= '0' && c <= '9') && !strings.ContainsRune("._-/", rune(c)) {
			return false
		}
	}
	return true
}

// LastGood is the rollback target that means every environment's last
// version that succeeded.
const LastGood = "last-good"

// parseRollback reads `/rollback [target]` and `/rollback last-good
// [digest]`, where the digest confirms a plan shipbot showed.
func parseRollback(args []string) (Command, string) {
	if len(args) == 0 || args[0] != LastGood {
		return targeted(NameRollback)(args)
	}
	c := Command{Name: NameRollback, Target: LastGood}
	switch {
	case len(args) > 2:
		return c, "`/rollback last-good` takes at most the digest of the plan it showed."
	case len(args) == 2 && !isDigest(args[1]):
		return c, quoted(args[1], "That") + " is not a plan digest: copy the 12 hex digits from shipbot's reply."
	case len(args) == 2:
		c.Digest = args[1]
	}
	return c, ""
}

func isDigest(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

package command

import (
	"fmt"
	"strings"
	"unicode"
)

const (
	// prefix addresses shipbot explicitly. GitLab executes and removes its own
	// quick actions, so "/shipbot status" is how to reach shipbot when a
	// command word collides with one.
	prefix = "shipbot"
	// maxLine caps the bytes of the first line that Parse reads. The longest
	// valid command is under 100 bytes; a longer line is never run, because a
	// cut line could drop the target it names.
	maxLine = 1024
	// maxLead caps the blank space Parse skips before the first line.
	maxLead = 4096
	// codeIndent is the indentation, in columns, of a Markdown code block.
	codeIndent = 4
)

// Parse reads a merge request comment. Only its first non-empty line counts,
// so the rest of the comment can explain the command.
func Parse(comment string) Result {
	line, cut, ok := firstLine(comment)
	if !ok || !strings.HasPrefix(line, "/") {
		return Result{Outcome: OutcomeIgnore}
	}
	words := strings.FieldsFunc(line, isSpace)
	word, args := words[0][1:], words[1:]
	addressed := lowerASCII(word) == prefix
	if addressed {
		if len(args) == 0 {
			return helpAll(Command{}, "No command after `/shipbot`.")
		}
		// "/shipbot /promote 50" means what it says.
		word, args = strings.TrimPrefix(args[0], "/"), args[1:]
	}
	e, known := lookup(word)
	switch {
	case !known:
		return notACommand(word, args, addressed)
	case cut:
		return helpWith(e, Command{Name: Name(e.word)}, fmt.Sprintf("That line is too long: shipbot reads commands of up to %d bytes.", maxLine))
	}
	cmd, problem := e.parse(args)
	switch {
	case problem != "":
		return helpWith(e, Command{Name: cmd.Name}, problem)
	case cmd.Name == NameHelp:
		return Result{Outcome: OutcomeHelp, Command: cmd, Reply: Help()}
	}
	return Result{Outcome: OutcomeRun, Command: cmd}
}

// notACommand handles a first word that is not a command. Plain "/word" is
// left alone: it is most likely a GitLab quick action or another bot's.
func notACommand(word string, args []string, addressed bool) Result {
	// "/promote50" and "/pause." are shipbot commands typed slightly wrong,
	// and saying nothing would leave the reviewer waiting.
	if stem, rest := splitStem(word); rest != "" && !isWordByte(rest[0]) {
		if e, ok := lookup(stem); ok {
			return helpWith(e, Command{Name: Name(e.word)}, junkProblem(stem, rest))
		}
		if lowerASCII(stem) == prefix {
			return helpAll(Command{}, junkProblem(stem, rest))
		}
	}
	if !addressed {
		return Result{Outcome: OutcomeIgnore}
	}
	if word == "" {
		return helpAll(Command{}, "No command after `/shipbot`.")
	}
	problem := "Unknown command."
	if isSafe(word) {
		problem = "Unknown command `" + word + "`."
	}
	if s, ok := suggest(word); ok {
		problem += fmt.Sprintf(" Did you mean %s?", didYouMean(s, args))
	}
	return helpAll(Command{}, problem)
}

// junkProblem explains what follows a command word without a space.
func junkProblem(stem, rest string) string {
	cmd := "/" + lowerASCII(stem)
	if rest[0] >= '0' && rest[0] <= '9' {
		if isSafe(rest) {
			return fmt.Sprintf("Put a space between `%s` and `%s`.", cmd, rest)
		}
		return fmt.Sprintf("Put a space after `%s`.", cmd)
	}
	if isSafe(rest) {
		return fmt.Sprintf("Remove the `%s` after `%s`.", rest, cmd)
	}
	return fmt.Sprintf("Put nothing but a space after `%s`.", cmd)
}

// didYouMean renders a suggested comment, keeping the arguments when they are
// safe to quote.
func didYouMean(word string, args []string) string {
	s := "/shipbot " + word
	for _, a := range args {
		if !isSafe(a) || len(s) > 80 {
			return "`/shipbot " + word + "`"
		}
		s += " " + a
	}
	return "`" + s + "`"
}

// helpAll replies with a problem and the whole command list.
func helpAll(c Command, problem string) Result {
	return Result{Outcome: OutcomeHelp, Command: c, Reply: problem + "\n\n" + Help()}
}

// helpWith replies with a problem and the usage of the command it is about.
func helpWith(e entry, c Command, problem string) Result {
	reply := problem + "\n\nUsage:\n" + e.usage + "\n\nComment `/shipbot help` to see every command."
	return Result{Outcome: OutcomeHelp, Command: c, Reply: reply}
}

// firstLine returns the first line of comment that is not blank, trimmed of
// spaces. It reports cut when that line is longer than maxLine, and !ok when
// there is none, it starts too far in, or Markdown would render it as code.
func firstLine(comment string) (line string, cut, ok bool) {
	start := -1
	for i, r := range comment {
		if i > maxLead {
			return "", false, false
		}
		if !isSpace(r) {
			start = i
			break
		}
	}
	if start < 0 || indented(comment[:start]) {
		return "", false, false
	}
	rest := comment[start:]
	if end := strings.IndexAny(rest[:min(len(rest), maxLine+1)], "\r\n"); end >= 0 {
		rest = rest[:end]
	}
	if len(rest) > maxLine {
		rest, cut = rest[:maxLine], true
	}
	return strings.TrimRightFunc(rest, isSpace), cut, true
}

// indented reports whether the last line of lead, the blank space before the
// first line, indents it as a Markdown code block: four columns of spaces or
// a tab. Other spaces, such as no-break spaces, do not indent in Markdown.
func indented(lead string) bool {
	lead = lead[strings.LastIndexAny(lead, "\r\n")+1:]
	cols := 0
	for i := 0; i < len(lead) && cols < codeIndent; i++ {
		switch lead[i] {
		case ' ':
			cols++
		case '\t':
			cols += codeIndent - cols%codeIndent
		default:
			return false
		}
	}
	return cols >= codeIndent
}

// isSpace reports whether r separates words. Besides Unicode spaces, which
// include no-break spaces pasted from chat and documents, it counts the
// invisible zero-width space, word joiner and byte order mark.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\u2060' || r == '\ufeff'
}

// lowerASCII lowercases ASCII letters. Words with other characters come back
// unchanged, so Unicode folding cannot turn "ſtatus" or a Kelvin sign into a
// command.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return s
		}
	}
	return strings.ToLower(s)
}

// splitStem splits a word after its leading ASCII letters.
func splitStem(word string) (stem, rest string) {
	i := 0
	for i < len(word) && isLetter(word[i]) {
		i++
	}
	return word[:i], word[i:]
}

// isWordByte reports whether c can continue a quick action's name, as in
// GitLab's "/promote_to_incident"; such words are not shipbot's.
func isWordByte(c byte) bool { return isLetter(c) || c == '_' || c == '-' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isSafe reports whether s may be quoted back in a reply: short, and made of
// characters that can neither mention anyone nor break out of the code span
// every quote goes in.
func isSafe(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && !strings.ContainsRune(".,:;!?-_%+", rune(c)) {
			return false
		}
	}
	return true
}

// quoted puts s in a code span when it is safe to quote, and returns
// instead otherwise.
func quoted(s, instead string) string {
	if isSafe(s) {
		return "`" + s + "`"
	}
	return instead
}

package templates

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error locates a problem in a template file, so that messages point at the line to fix.
type Error struct {
	File         string // template file, relative to the loaded dir
	Line         int    // line in File; 0 when unknown
	Column       int    // column in Line; 0 when unknown
	RenderedLine int    // line in File's rendered output, when Line is unknown
	Err          error  // the underlying error
	msg          string // Err's text without the location it repeats
}

// Error prints "file:line:col: msg" for template lines and names rendered lines as such.
func (e *Error) Error() string {
	msg := e.msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	case e.RenderedLine > 0:
		return fmt.Sprintf("%s: line %d of the rendered output: %s", e.File, e.RenderedLine, msg)
	}
	return fmt.Sprintf("%s: %s", e.File, msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// templateLoc matches the "template: name:line[:col]: " prefix that
// text/template puts on parse and exec errors; include nests one per level.
var templateLoc = regexp.MustCompile(`template: ([^:\n]+):(\d+):(?:(\d+):)? (?:executing "[^"\n]*" )?`)

// templateError turns a text/template error into an Error at the innermost
// location, where the mistake is; outer include sites are kept as context.
func templateError(err error, file string) *Error {
	e := &Error{File: file, Err: err}
	text := err.Error()
	locs := templateLoc.FindAllStringSubmatchIndex(text, -1)
	if len(locs) == 0 {
		e.msg = strings.TrimPrefix(text, "template: ")
		return e
	}
	last := locs[len(locs)-1]
	e.File, e.Line, e.Column = location(text, last)
	e.msg = text[last[1]:]
	if len(locs) > 1 {
		e.msg += " (included from " + includeChain(text, locs[:len(locs)-1]) + ")"
	}
	return e
}

// location reads one templateLoc match.
func location(text string, m []int) (file string, line, col int) {
	line, _ = strconv.Atoi(text[m[4]:m[5]])
	if m[6] >= 0 {
		// text/template counts columns from 0; editors and compilers from 1.
		col, _ = strconv.Atoi(text[m[6]:m[7]])
		col++
	}
	return text[m[2]:m[3]], line, col
}

// includeChain names the include sites innermost first, eliding the middle of
// a deep recursion so the message stays readable.
func includeChain(text string, locs [][]int) string {
	var sites []string
	for i := len(locs) - 1; i >= 0; i-- {
		file, line, col := location(text, locs[i])
		sites = append(sites, fmt.Sprintf("%s:%d:%d", file, line, col))
	}
	if len(sites) > 3 {
		sites = []string{sites[0], sites[1], "…", sites[len(sites)-1]}
	}
	return strings.Join(sites, " via ")
}

// yamlLineMsg finds the "line N: msg" that go-yaml reports, counted from the
// start of the document it was given.
var yamlLineMsg = regexp.MustCompile(`(?s)line (\d+): (.*)$`)

// yamlError places a YAML error at a template line when the offending rendered
// line appears exactly once in the template, else at the rendered line.
func yamlError(err error, r *rendered, d document) *Error {
	e := &Error{File: r.file, Err: err}
	text := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	m := yamlLineMsg.FindStringSubmatch(text)
	if m == nil {
		e = r.docError(d, err)
		e.msg = "invalid YAML in the document starting here: " + strings.TrimPrefix(text, "yaml: ")
		return e
	}
	n, _ := strconv.Atoi(m[1])
	e.RenderedLine = d.line + n - 1
	e.msg = "invalid YAML: " + strings.TrimSpace(m[2])
	line := r.outputLine(e.RenderedLine)
	if tl := sourceLine(r.src, line); tl > 0 {
		e.Line, e.RenderedLine = tl, 0
	} else if strings.TrimSpace(line) != "" {
		e.msg = fmt.Sprintf("%q: %s", line, e.msg)
	}
	return e
}

// docError places a problem with a whole document at its first line: in the
// template when that line appears there once, else in the rendered output.
func (r *rendered) docError(d document, err error) *Error {
	e := &Error{File: r.file, RenderedLine: d.line, Err: err}
	for i, line := range strings.Split(d.text, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		e.RenderedLine = d.line + i
		if tl := sourceLine(r.src, strings.TrimSuffix(line, "\r")); tl > 0 {
			e.Line, e.RenderedLine = tl, 0
		}
		break
	}
	return e
}

// sourceLine returns the 1-based line of src that equals line, if exactly one
// does and it has no action: only then is the rendered line surely that one.
func sourceLine(src, line string) int {
	if strings.TrimSpace(line) == "" {
		return 0
	}
	found := 0
	for i, l := range strings.Split(src, "\n") {
		if strings.TrimSuffix(l, "\r") != line || strings.Contains(l, "{{") {
			continue
		}
		if found > 0 {
			return 0
		}
		found = i + 1
	}
	return found
}

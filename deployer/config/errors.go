package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in the config file, located by line where known.
type Error struct {
	File string
	Line int
	Path string // e.g. environments[1].refs.branches[0]
	Msg  string
}

// Error formats as file:line: path: message, like a compiler.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError turns the decoder's "yaml: unmarshal errors: line 3: ..." into
// one Error per problem, each prefixed with the file.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{File: file, Msg: trimYAML(err.Error())}
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		e := &Error{File: file, Msg: msg}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			fmt.Sscanf(m[1], "%d", &e.Line)
			e.Msg = friendlier(m[2])
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

var (
	notFound    = regexp.MustCompile(`^field (\S+) not found in type (?:config|release)\.(\w+)$`)
	badDuration = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into time\\.Duration$")
)

// sections names the Go types whose YAML name is not just their name in lower case.
var sections = map[string]string{
	"AppEnvironment":  "app environment",
	"Spec":            "release",
	"GateSpec":        "gate",
	"HTTPGate":        "http gate",
	"PrometheusGate":  "prometheus gate",
	"NotifyWebhook":   "notify webhook",
	"HelmSource":      "helm source",
	"HelmImageValues": "helm imageValues",
	"KustomizeSource": "kustomize source",
	"ManifestsSource": "manifests source",
	"HelmOverride":    "environment helm",
}

// friendlier rewords the decoder's Go-centric messages for people who edit YAML.
func friendlier(msg string) string {
	if m := notFound.FindStringSubmatch(msg); m != nil {
		name, ok := sections[m[2]]
		if !ok {
			name = strings.ToLower(m[2])
		}
		return fmt.Sprintf("unknown key %q in %s", m[1], name)
	}
	if m := badDuration.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q is not a duration such as 90s or 5m", m[1])
	}
	return msg
}

func trimYAML(s string) string {
	s = strings.TrimPrefix(s, "yaml: ")
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		return "line " + m[1] + ": " + m[2]
	}
	return s
}

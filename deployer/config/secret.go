package config

import (
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// envRef is the only form a secret may take to come from the environment:
// the whole value is ${NAME}. Partial interpolation is refused so that a
// stray "$" in a real secret is never rewritten.
var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// Secret is a credential read from the file or, written as ${NAME}, from the
// environment variable NAME. It never prints its value.
type Secret struct {
	value string
	from  string // the environment variable it came from, if any
}

// NewSecret makes a Secret holding v, for tests and programmatic configs.
func NewSecret(v string) Secret { return Secret{value: v} }

// UnmarshalYAML reads the scalar and resolves ${NAME} from the environment.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var raw string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	m := envRef.FindStringSubmatch(raw)
	if m == nil {
		s.value = raw
		return nil
	}
	v, ok := os.LookupEnv(m[1])
	if !ok {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: environment variable %s is not set", n.Line, m[1])}}
	}
	s.value, s.from = v, m[1]
	return nil
}

// Value is the secret itself. Call it only where the secret is used.
func (s Secret) Value() string { return s.value }

// IsZero reports whether no secret was given.
func (s Secret) IsZero() bool { return s.value == "" }

// String hides the value so a secret can never reach a log line by accident.
func (s Secret) String() string {
	switch {
	case s.value == "":
		return "(unset)"
	case s.from != "":
		return "(from $" + s.from + ")"
	default:
		return "(redacted)"
	}
}

// MarshalYAML keeps secrets out of any dump of the config.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

package release

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Step is one entry of a spec's steps: a traffic weight such as 10, or a
// canary's routing stage, {match: {headers: {x-canary: "true"}}} (requests
// with these headers go to the new version) or {mirror: 20} (20 % of
// requests are copied to it, answered by the old one). A routing stage
// keeps the weight of the step before it (0 when first) and, with
// pause: true, waits for approval once in effect.
type Step struct {
	Weight int    `yaml:"-"`
	Match  *Match `yaml:"match,omitempty"`
	Mirror int    `yaml:"mirror,omitempty"`
	Pause  bool   `yaml:"pause,omitempty"`
}

// Weights is steps of plain weights, e.g. Weights(10, 50, 100).
func Weights(ws ...int) []Step {
	out := make([]Step, len(ws))
	for i, w := range ws {
		out[i] = Step{Weight: w}
	}
	return out
}

// Routes reports whether the step is a match or mirror stage.
func (s Step) Routes() bool { return s.Match != nil || s.Mirror != 0 }

// UnmarshalYAML reads a weight or a routing stage's mapping.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		w, err := strconv.Atoi(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: step %q: want a weight (1..100), {match: {headers: {...}}} or {mirror: N}", n.Line, n.Value)
		}
		*s = Step{Weight: w}
		return nil
	}
	type plain Step // without this method
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	if p.Match == nil && p.Mirror == 0 {
		return fmt.Errorf("line %d: step: want a weight, or a mapping with match or mirror", n.Line)
	}
	*s = Step(p)
	return nil
}

// MarshalYAML writes a weight as a number, a routing stage as a mapping.
func (s Step) MarshalYAML() (any, error) {
	if !s.Routes() {
		return s.Weight, nil
	}
	type plain Step
	return plain(s), nil
}

// String is the step as people read it: "10 %", "header x-canary=true",
// "mirror 20 %".
func (s Step) String() string {
	return stageLabel(s.Weight, s.Match, s.Mirror)
}

func stageLabel(weight int, m *Match, mirror int) string {
	switch {
	case m != nil:
		return "header " + describeHeaders(m.Headers)
	case mirror > 0:
		return fmt.Sprintf("mirror %d %%", mirror)
	}
	return fmt.Sprintf("%d %%", weight)
}

// Label says what a stage does, as Step.String does.
func (s Stage) Label() string {
	if s.Routes() {
		return stageLabel(s.Target, s.Match, s.Mirror)
	}
	return stageLabel(s.Target, nil, 0)
}

// weightsOf lists the weights of the plain steps.
func weightsOf(steps []Step) []int {
	var out []int
	for _, s := range steps {
		if !s.Routes() {
			out = append(out, s.Weight)
		}
	}
	return out
}

// validateSteps checks steps: weights in 1..100, strictly increasing,
// ending at 100; routing stages only for a canary, before the last step,
// with a mirror percent in 1..100 or at least one header; blue-green and
// rolling have the single step 100.
func validateSteps(path *field.Path, strategy Strategy, steps []Step) field.ErrorList {
	var errs field.ErrorList
	weights := weightsOf(steps)
	if (strategy == BlueGreen || strategy == Rolling) && len(steps) > 0 && (len(weights) != len(steps) || !slices.Equal(weights, []int{100})) {
		return append(errs, field.Invalid(path, stepsValue(steps), fmt.Sprintf("%s has the single step 100", strategy)))
	}
	if (strategy == Canary || strategy == Groups) && len(steps) == 0 {
		return append(errs, field.Required(path, "e.g. [10, 50, 100]"))
	}
	last := 0
	for i, s := range steps {
		p := path.Index(i)
		if s.Routes() {
			errs = append(errs, validateRouting(p, strategy, s)...)
			continue
		}
		switch {
		case s.Weight < 1 || s.Weight > 100:
			errs = append(errs, field.Invalid(p, s.Weight, "must be between 1 and 100"))
		case s.Weight <= last:
			errs = append(errs, field.Invalid(p, s.Weight, fmt.Sprintf("must be greater than the step before it (%d)", last)))
		}
		last = max(last, s.Weight)
	}
	if n := len(steps); n > 0 && (steps[n-1].Routes() || steps[n-1].Weight != 100) {
		errs = append(errs, field.Invalid(path.Index(n-1), steps[n-1].value(), "the last step must be 100"))
	}
	return errs
}

func validateRouting(p *field.Path, strategy Strategy, s Step) field.ErrorList {
	var errs field.ErrorList
	if strategy != Canary {
		return append(errs, field.Invalid(p, s.String(), "match and mirror steps need a canary, whose router steers requests"))
	}
	if s.Match != nil && s.Mirror != 0 {
		errs = append(errs, field.Invalid(p, s.String(), "a step is either match or mirror"))
	}
	if s.Mirror < 0 || s.Mirror > 100 {
		errs = append(errs, field.Invalid(p.Child("mirror"), s.Mirror, "must be between 1 and 100"))
	}
	if s.Match != nil {
		if len(s.Match.Headers) == 0 {
			errs = append(errs, field.Required(p.Child("match", "headers"), `e.g. {x-canary: "true"}`))
		}
		for k := range s.Match.Headers {
			if k == "" || strings.ContainsAny(k, " :\t") {
				errs = append(errs, field.Invalid(p.Child("match", "headers").Key(k), k, "is not a header name"))
			}
		}
	}
	return errs
}

// value is the step as an error shows it: a weight as the number written.
func (s Step) value() any {
	if s.Routes() {
		return s.String()
	}
	return s.Weight
}

// stepsValue is steps as an error shows them: weights as the list written.
func stepsValue(steps []Step) any {
	if w := weightsOf(steps); len(w) == len(steps) {
		return w
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
}

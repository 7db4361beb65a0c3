package config

import (
	"errors"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shipbot/shipbot/deployer/release"
)

// ReleaseFor returns the release spec for the app in env: the environment's
// own spec, else the app's, which covers the environments with tag rules.
// ok is false when neither applies, or the app does not deploy to env: a
// plain deploy with no stages.
func (a App) ReleaseFor(env string) (release.Spec, bool) {
	e, listed := a.Environments[env]
	switch {
	case !listed:
		return release.Spec{}, false
	case e.Release != nil:
		return *e.Release, true
	case a.Release != nil && !e.untagged:
		return *a.Release, true
	default:
		return release.Spec{}, false
	}
}

// setReleaseDefaults spells out onNewer, and a canary's canaryScale, so
// that what is displayed is what applies, and keeps the app's spec out of environments without tag rules,
// so a canary for production does not make every dev push wait for approval.
func (a *App) setReleaseDefaults(tagged map[string]bool) {
	specs := []*release.Spec{a.Release}
	for name, e := range a.Environments {
		e.untagged = !tagged[name]
		a.Environments[name] = e
		specs = append(specs, e.Release)
	}
	for _, s := range specs {
		if s != nil && s.OnNewer == "" {
			s.OnNewer = release.OnNewerQueue
		}
		if s != nil && s.Strategy == release.Canary && s.CanaryScale == "" {
			s.CanaryScale = release.CanaryScaleFull
		}
	}
}

// validateRelease reports the spec's own problems at their lines in the
// file, naming whose spec it is (e.g. `app "web", environment "prod"`): the
// path names an app by its index only.
func validateRelease(v *validator, path []any, whose string, s *release.Spec) {
	if s == nil {
		return
	}
	for _, err := range s.Validate() {
		var fe *field.Error
		if !errors.As(err, &fe) {
			v.failf(path, "%v (%s)", err, whose)
			continue
		}
		v.failf(at(path, fieldPath(fe.Field)...), "%s (%s)", fe.ErrorBody(), whose)
	}
}

// fieldPath turns a field.Path string such as "gates[0].prometheus.query"
// into the keys and indexes lineOf walks: "gates", 0, "prometheus", "query".
// A bracketed non-number (a map key) stays a string.
func fieldPath(s string) []any {
	var out []any
	for _, part := range strings.Split(s, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for rest != "" {
			key, after, _ := strings.Cut(rest, "]")
			if i, err := strconv.Atoi(key); err == nil {
				out = append(out, i)
			} else {
				out = append(out, key)
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}

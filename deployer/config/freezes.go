package config

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shipbot/shipbot/deployer/release"
)

// FreezeCalendar is every environment's freeze windows, for the engine.
func (c *Config) FreezeCalendar() release.FreezeCalendar {
	out := release.FreezeCalendar{}
	for _, e := range c.Environments {
		if len(e.Freezes) > 0 {
			out[e.Name] = e.Freezes
		}
	}
	return out
}

// Freezes asks the freeze windows of the config in force at each
// question, so a reload that changes them applies to releases already
// running.
type Freezes struct{ Config Current }

var _ release.Freezes = Freezes{}

// Frozen implements release.Freezes.
func (f Freezes) Frozen(ctx context.Context, r release.Release, at time.Time) (release.Freeze, bool, error) {
	return f.Config.Load().FreezeCalendar().Frozen(ctx, r, at)
}

// validateFreeze reports a freeze window's problems at their lines.
func validateFreeze(v *validator, path []any, env string, w release.FreezeWindow) {
	whose := fmt.Sprintf("environment %q", env)
	for _, err := range w.Validate() {
		var fe *field.Error
		if !errors.As(err, &fe) {
			v.failf(path, "%v (%s)", err, whose)
			continue
		}
		v.failf(at(path, fieldPath(fe.Field)...), "%s (%s)", fe.ErrorBody(), whose)
	}
}

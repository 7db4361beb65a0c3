package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Freeze is a time when an environment takes no new release steps.
type Freeze struct {
	Until  time.Time // when it ends, as far as is known now
	Source string    // where it comes from, e.g. "shipbot.yaml" or "GitLab freeze period"
	Reason string    // optional words from whoever set it
}

// String says until when and why, e.g. "frozen until 2026-03-02 06:00
// UTC (shipbot.yaml: weekend)".
func (f Freeze) String() string {
	msg := "frozen until " + f.Until.UTC().Format("2006-01-02 15:04 MST") + " (" + f.Source
	if f.Reason != "" {
		msg += ": " + f.Reason
	}
	return msg + ")"
}

// Freezes says whether a release's environment is frozen at a time. The
// config's windows (FreezeCalendar) and GitLab's own freeze periods, read by
// the bot layer, implement it.
type Freezes interface {
	Frozen(ctx context.Context, r Release, at time.Time) (Freeze, bool, error)
}

// AllFreezes is frozen when any of its sources is; then Until is the
// latest end among those that freeze, since all must have ended.
type AllFreezes []Freezes

// Frozen asks every source. A source that fails fails the answer: the
// engine then waits rather than release into a freeze it could not read.
func (all AllFreezes) Frozen(ctx context.Context, r Release, at time.Time) (Freeze, bool, error) {
	var out Freeze
	frozen := false
	var errs []error
	for _, f := range all {
		if f == nil {
			continue
		}
		got, ok, err := f.Frozen(ctx, r, at)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok && (!frozen || got.Until.After(out.Until)) {
			out, frozen = got, true
		}
	}
	return out, frozen, errors.Join(errs...)
}

// FreezeWindow is a recurring freeze in shipbot.yaml: it starts at each
// time Cron names, in TimeZone, and lasts Duration.
//
//	freezes:
//	  - {cron: "0 18 * * FRI", duration: 63h, timeZone: Europe/Berlin, reason: weekend}
type FreezeWindow struct {
	Cron     string        `yaml:"cron"`               // five fields: minute hour day-of-month month day-of-week
	Duration time.Duration `yaml:"duration"`           // how long each freeze lasts
	TimeZone string        `yaml:"timeZone,omitempty"` // IANA name; UTC when empty
	Reason   string        `yaml:"reason,omitempty"`
}

// cronParser reads the standard five fields, and descriptors like @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron reads a five-field cron expression in a time zone ("" is UTC).
func ParseCron(expr, tz string) (cron.Schedule, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", tz, err)
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	if spec, ok := s.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return s, nil
}

// Validate reports every problem at once, as *field.Error with YAML names.
func (w FreezeWindow) Validate() []error {
	var errs []error
	if w.Cron == "" {
		errs = append(errs, field.Required(field.NewPath("cron"), `e.g. "0 18 * * FRI"`))
	} else if _, err := cronParser.Parse(w.Cron); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("cron"), w.Cron, err.Error()))
	}
	if w.Duration <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("duration"), w.Duration.String(), "must be positive, e.g. 63h"))
	}
	if _, err := time.LoadLocation(w.TimeZone); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("timeZone"), w.TimeZone, "is not an IANA time zone, e.g. Europe/Berlin"))
	}
	return errs
}

// Active reports whether a freeze of w covers at, and when it ends: the
// freeze that started last in (at−Duration, at] decides.
func (w FreezeWindow) Active(at time.Time) (time.Time, bool) {
	s, err := ParseCron(w.Cron, w.TimeZone)
	if err != nil {
		return time.Time{}, false // Validate refused it at load time
	}
	var until time.Time
	// Walk the starts inside the last Duration; each extends the freeze.
	for t := s.Next(at.Add(-w.Duration)); !t.IsZero() && !t.After(at); t = s.Next(t) {
		until = t.Add(w.Duration)
	}
	return until, !until.IsZero() && until.After(at)
}

// FreezeCalendar is the config's freeze windows by environment name.
type FreezeCalendar map[string][]FreezeWindow

// Frozen implements Freezes from the windows of r's environment.
func (c FreezeCalendar) Frozen(_ context.Context, r Release, at time.Time) (Freeze, bool, error) {
	var out Freeze
	frozen := false
	for _, w := range c[r.Environment] {
		if until, ok := w.Active(at); ok && (!frozen || until.After(out.Until)) {
			out, frozen = Freeze{Until: until, Source: "shipbot.yaml", Reason: w.Reason}, true
		}
	}
	return out, frozen, nil
}

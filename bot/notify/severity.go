// Package notify holds what every notification surface shares: how serious
// an event is, so each surface can route or hold back the minor ones.
package notify

import (
	"fmt"

	"github.com/shipbot/shipbot/deployer/release"
)

// Severity is how much an event asks of the people reading it. Severities
// are written in config as these strings; Rank orders them.
type Severity string

// Severities, least serious first.
const (
	Info    Severity = "info"    // progress: nobody needs to act
	Warning Severity = "warning" // a person should look: paused, a gate or pods failing, rolling back
	Error   Severity = "error"   // the release failed or was rolled back
)

// Rank orders severities: Info < Warning < Error. An unknown severity ranks
// as Info, so a typo never hides an event.
func (s Severity) Rank() int {
	switch s {
	case Warning:
		return 1
	case Error:
		return 2
	}
	return 0
}

// AtLeast reports whether s is as serious as floor or more.
func (s Severity) AtLeast(floor Severity) bool { return s.Rank() >= floor.Rank() }

// ParseSeverity reads a config value; empty is Info.
func ParseSeverity(s string) (Severity, error) {
	switch sv := Severity(s); sv {
	case "":
		return Info, nil
	case Info, Warning, Error:
		return sv, nil
	}
	return "", fmt.Errorf("severity %q is not one of info, warning, error", s)
}

// severities lists the reasons above Info; every other reason is Info.
var severities = map[release.Reason]Severity{
	release.ReasonPaused:         Warning,
	release.ReasonHeld:           Warning,
	release.ReasonFreezeOverride: Warning,
	release.ReasonStillPaused:    Warning,
	release.ReasonGateFailed:     Warning,
	release.ReasonNotReady:       Warning,
	release.ReasonRollingBack:    Warning,
	release.ReasonAborted:        Warning,
	release.ReasonIntentRejected: Warning,
	release.ReasonFailed:         Error,
	release.ReasonRolledBack:     Error,
}

// Of is the severity of a release event's reason.
func Of(r release.Reason) Severity {
	if s, ok := severities[r]; ok {
		return s
	}
	return Info
}

package notify

import (
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

func TestOf(t *testing.T) {
	cases := map[release.Reason]Severity{
		release.ReasonStageStarted:   Info,
		release.ReasonStageCompleted: Info,
		release.ReasonWaitingForGate: Info,
		release.ReasonGatePassed:     Info,
		release.ReasonSucceeded:      Info,
		release.ReasonQueued:         Info,
		release.ReasonPaused:         Warning,
		release.ReasonStillPaused:    Warning,
		release.ReasonGateFailed:     Warning,
		release.ReasonNotReady:       Warning,
		release.ReasonRollingBack:    Warning,
		release.ReasonAborted:        Warning,
		release.ReasonIntentRejected: Warning,
		release.ReasonFailed:         Error,
		release.ReasonRolledBack:     Error,
		"SomethingNew":               Info,
	}
	for reason, want := range cases {
		if got := Of(reason); got != want {
			t.Errorf("Of(%s) = %s, want %s", reason, got, want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	cases := []struct {
		s, min Severity
		want   bool
	}{
		{Info, Info, true}, {Info, Warning, false}, {Info, Error, false},
		{Warning, Info, true}, {Warning, Warning, true}, {Warning, Error, false},
		{Error, Info, true}, {Error, Warning, true}, {Error, Error, true},
		{"", Info, true}, {Error, "", true},
	}
	for _, c := range cases {
		if got := c.s.AtLeast(c.min); got != c.want {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", c.s, c.min, got, c.want)
		}
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"": Info, "info": Info, "warning": Warning, "error": Error} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Error", "warn", "debug"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) accepted it", in)
		}
	}
}

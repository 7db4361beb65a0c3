package dingtalk

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCardGolden pins what the group reads for typical release events,
// buttons included. Run with -update after a deliberate change.
func TestCardGolden(t *testing.T) {
	at := t0.Add(12 * time.Minute)
	paused := testRelease("r000000000007", "web")
	paused.Phase, paused.Stage, paused.Percent = release.Paused, 1, 10
	paused.Checks = []release.Check{
		{Stage: 0, When: release.After, Gate: "smoke", Status: release.CheckPassed},
		{Stage: 1, When: release.Before, Gate: "change-window", Status: release.CheckPassed},
	}
	progressing := testRelease("r000000000008", "api")
	progressing.Checks = []release.Check{
		{Stage: 0, When: release.After, Gate: "smoke", Status: release.CheckPassed},
		{Stage: 0, When: release.After, Gate: "latency", Status: release.CheckRunning, Started: t0, Runs: 2},
	}
	failed := testRelease("r000000000009", "web")
	failed.Phase, failed.Percent, failed.Reason = release.RollingBack, 10, "after gate latency failed"
	failed.Checks = []release.Check{{Stage: 0, When: release.After, Gate: "latency", Status: release.CheckFailed, Message: "p99 1.2 > 1"}}
	first := testRelease("r000000000010", "worker")
	first.From, first.Stages, first.Phase, first.Stage, first.Percent = release.Revision{}, first.Stages[2:], release.Succeeded, 1, 100
	cases := map[string]release.Event{
		"paused":      {Reason: release.ReasonPaused, Release: paused, Message: "stage 1/3 done; waiting for approval"},
		"progressing": {Reason: release.ReasonWaitingForGate, Release: progressing, Message: "after gate latency: run 2 of 5"},
		"rollingback": {Reason: release.ReasonGateFailed, Release: failed, Message: "after gate latency: p99 1.2 > 1"},
		"succeeded":   {Reason: release.ReasonSucceeded, Release: first},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			e.At, e.Summary = at, release.Describe(e.Release, at)
			c := NewCard(e)
			var labels []string
			for _, a := range c.Actions {
				labels = append(labels, a.Label())
			}
			got := "# " + c.Title + "\n\n" + c.Text + "\nbuttons: " + strings.Join(labels, " | ") + "\n"
			path := filepath.Join("testdata", name+".golden.md")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("card differs from %s:\n%s", path, got)
			}
		})
	}
}

// A gate's answer and a release's reason come from outside shipbot (a test
// platform, a person): the card shows them, but they cannot add a link or a
// mention to it.
func TestCardShowsOutsideTextAsWritten(t *testing.T) {
	r := testRelease("r000000000011", "web")
	r.Phase, r.Percent, r.Reason = release.RollingBack, 10, "after gate smoke failed"
	r.WebURL = "https://gitlab.example/p/-/pipelines/1) [x](https://evil.example"
	r.Checks = []release.Check{{Stage: 0, When: release.After, Gate: "smoke", Status: release.CheckFailed, Message: "see [logs](https://evil.example/a) @all"}}
	card := NewCard(release.Event{Reason: release.ReasonGateFailed, Release: r, Message: "![img](https://evil.example/p.png)\n# big"})
	for _, bad := range []string{"[logs](", "![img](", " @all", "\n# big", "1) [x]("} {
		if strings.Contains(card.Text, bad) {
			t.Errorf("card has %q as markup:\n%s", bad, card.Text)
		}
	}
	for _, shown := range []string{`see \[logs\](https://evil.example/a) \@all`, `\!\[img\](https://evil.example/p.png) \# big`} {
		if !strings.Contains(card.Text, shown) {
			t.Errorf("card lacks %q:\n%s", shown, card.Text)
		}
	}
}

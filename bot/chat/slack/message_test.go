package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/deployer/release"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestButtonsPerPhase(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *release.Release)
		want []string
	}{
		{"paused at stage 1/3", func(r *release.Release) { *r = pausedByGate(*r) },
			[]string{"Continue", "Promote to 50%", "Promote to 100%", "Rollback", "Abort"}},
		{"paused at stage 2/3: the next stage is the last", func(r *release.Release) { r.Phase, r.Stage, r.Percent = release.Paused, 1, 10 },
			[]string{"Continue", "Promote to 100%", "Rollback", "Abort"}},
		{"paused before finishing", func(r *release.Release) { r.Phase, r.Stage, r.Percent = release.Paused, 3, 100 },
			[]string{"Continue", "Rollback", "Abort"}},
		{"progressing", func(r *release.Release) {}, []string{"Pause", "Rollback", "Abort"}},
		{"verifying", func(r *release.Release) { r.Phase, r.Percent = release.Verifying, 10 }, []string{"Pause", "Rollback", "Abort"}},
		{"pending", func(r *release.Release) { r.Phase = release.Pending }, []string{"Pause", "Rollback", "Abort"}},
		{"rolling back", func(r *release.Release) { r.Phase = release.RollingBack }, []string{"Abort"}},
		{"first release, paused: nothing to roll back to", func(r *release.Release) {
			r.From, r.Stages, r.Phase = release.Revision{}, r.Stages[2:], release.Paused
		}, []string{"Continue", "Abort"}},
		{"paused after a header stage: promote skips the mirror stage", func(r *release.Release) {
			r.Phase, r.Stage = release.Paused, 1
			r.Stages = []release.Stage{
				{Match: &release.Match{Headers: map[string]string{"x-canary": "true"}}}, {Mirror: 20}, {Target: 10}, {Target: 50}, {Target: 100},
			}
		}, []string{"Continue", "Promote to 10%", "Promote to 100%", "Rollback", "Abort"}},
		{"succeeded", func(r *release.Release) { r.Phase = release.Succeeded }, nil},
		{"rolled back", func(r *release.Release) { r.Phase = release.RolledBack }, []string{"Back to last good…"}},
		{"aborted", func(r *release.Release) { r.Phase = release.Aborted }, []string{"Back to last good…"}},
		{"failed", func(r *release.Release) { r.Phase = release.Failed }, []string{"Back to last good…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture()
			tt.edit(&r)
			if got := labels(messageBlocks(r, t0)); !slices.Equal(got, tt.want) {
				t.Errorf("buttons = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestButtonsRoundTrip checks that every button parses back into an intent
// the release would record now.
func TestButtonsRoundTrip(t *testing.T) {
	r := pausedByGate(fixture())
	for _, b := range buttons(r) {
		id, in, err := parseAction(b.ActionID, b.Value)
		if err != nil {
			t.Fatalf("%s %q: %v", b.ActionID, b.Value, err)
		}
		if id != r.ID || !allowed(r, in) {
			t.Errorf("%s %q → %s %s: want an intent release %s allows", b.ActionID, b.Value, id, in, r.ID)
		}
	}
	abort := buttons(r)[len(buttons(r))-1]
	if abort.ActionID != "shipbot:abort" || abort.Confirm == nil {
		t.Errorf("last button = %s, want abort behind a confirm dialog", abort.ActionID)
	}
}

func TestMessageGolden(t *testing.T) {
	pendingContinue := func(r release.Release) release.Release {
		r.Intents = []release.Intent{{Seq: 1, Kind: release.IntentContinue, Actor: "alice", Surface: release.SurfaceSlack, At: t0.Add(5 * time.Minute)}}
		return r
	}
	succeeded := func(r release.Release) release.Release {
		r.Phase, r.Stage, r.Percent, r.Updated = release.Succeeded, 3, 100, t0.Add(31*time.Minute)
		r.Checks = []release.Check{{Stage: 2, When: release.After, Gate: "smoke", Status: release.CheckPassed, Runs: 1, Message: "HTTP 200 <ok> & done"}}
		return r
	}
	tests := []struct {
		name string
		r    release.Release
		now  time.Time
	}{
		{"progressing", fixture(), t0.Add(30 * time.Second)},
		{"paused-gate-failed", pausedByGate(fixture()), t0.Add(16 * time.Minute)},
		{"continue-requested", pendingContinue(pausedByGate(fixture())), t0.Add(5 * time.Minute)},
		{"succeeded", succeeded(fixture()), t0.Add(31 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, slack.Blocks{BlockSet: messageBlocks(tt.r, tt.now)})
		})
	}
}

// golden compares v, as indented JSON, with testdata/<name>.golden.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	// slack-go's Blocks marshal themselves with <, > and & escaped; unescape
	// them so that the golden files read like the messages.
	got = *bytes.NewBuffer([]byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(got.String())))
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s differs from what messageBlocks renders now (go test -update rewrites it):\n%s", path, got.String())
	}
}

func TestTextFallback(t *testing.T) {
	got := messageText(pausedByGate(fixture()), t0.Add(16*time.Minute))
	want := "checkout v1-3-0 → v1-4-0 on prod: stage 1/3 · 10 % · paused: gate error-rate failed (5.2 > 1 (5xx per second)) 12m"
	if got != want {
		t.Errorf("Text =\n%s\nwant\n%s", got, want)
	}
}

// Failure text cannot end its code block, nor make a link of its own.
func TestCodeBlockKeepsTextInside(t *testing.T) {
	got := codeBlock("boom\n```\n<https://evil.example|click here>")
	if n := strings.Count(got, "```"); n != 2 || !strings.HasPrefix(got, "```") || !strings.HasSuffix(got, "```") {
		t.Errorf("%q has %d fences, want only its own two", got, n)
	}
	if strings.Contains(got, "<https") {
		t.Errorf("%q keeps a Slack link", got)
	}
}

package slack

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// TestNotifierEditsOneMessage drives a release through several events, with
// a restart in the middle: the channel holds one message, edited in place,
// showing the last event's state.
func TestNotifierEditsOneMessage(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	r := fixture()
	notify := func(reason release.Reason, r release.Release, msg string, at time.Duration) {
		t.Helper()
		if err := e.app.Notifier.Notify(ctx, event(reason, r, msg, t0.Add(at))); err != nil {
			t.Fatalf("%s: %v", reason, err)
		}
	}

	notify(release.ReasonStageStarted, r, "stage 1/3: moving to 10 %", 0)
	r.Phase, r.Percent = release.Verifying, 10
	notify(release.ReasonStageCompleted, r, "stage 1/3 at 10 %", time.Minute)
	notify(release.ReasonPaused, pausedByGate(r), "gate error-rate failed", 4*time.Minute)

	e.restart(ModeHTTP)
	r.Phase, r.Stage, r.Percent = release.Progressing, 1, 10
	notify(release.ReasonStageStarted, r, "stage 2/3: moving to 50 %", 20*time.Minute)
	r.Phase, r.Stage, r.Percent = release.Succeeded, 3, 100
	notify(release.ReasonSucceeded, r, "100 % on v1-4-0", 40*time.Minute)

	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 {
		t.Fatalf("channel has %d messages, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.Edits != 4 {
		t.Errorf("message edited %d times, want 4 (5 events, 1 post)", m.Edits)
	}
	if got := labels(m.Blocks.BlockSet); len(got) != 0 {
		t.Errorf("succeeded release shows buttons %q", got)
	}
	if !strings.Contains(m.Text, "succeeded") || !strings.Contains(render(m.Blocks.BlockSet), "Succeeded") {
		t.Errorf("message does not show the release succeeded: text %q", m.Text)
	}
	if got := e.slack.Thread(testChannel, m.TS); len(got) != 0 {
		t.Errorf("no event here has a thread reply, got %d", len(got))
	}
}

func TestNotifierShowsButtonsOfTheCurrentPhase(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	r := fixture()
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageStarted, r, "", t0)); err != nil {
		t.Fatal(err)
	}
	if got, want := labels(e.slack.Channel(testChannel)[0].Blocks.BlockSet), []string{"Pause", "Rollback", "Abort"}; !slices.Equal(got, want) {
		t.Errorf("progressing: buttons %q, want %q", got, want)
	}
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonPaused, pausedByGate(r), "", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	want := []string{"Continue", "Promote to 50%", "Promote to 100%", "Rollback", "Abort"}
	if got := labels(e.slack.Channel(testChannel)[0].Blocks.BlockSet); !slices.Equal(got, want) {
		t.Errorf("paused: buttons %q, want %q", got, want)
	}
}

func TestNotifierThreadsGateFailure(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	r := fixture()
	r.Phase, r.Percent = release.Verifying, 10
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageCompleted, r, "stage 1/3 at 10 %", t0)); err != nil {
		t.Fatal(err)
	}
	reason := "after gate error-rate: 5.2 > 1 (5xx per second) <rate(http_requests_total{code=~\"5..\"}[1m])>"
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonGateFailed, pausedByGate(r), reason, t0.Add(4*time.Minute))); err != nil {
		t.Fatal(err)
	}

	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 {
		t.Fatalf("channel has %d messages, want 1: the reason goes to the thread", len(msgs))
	}
	replies := e.slack.Thread(testChannel, msgs[0].TS)
	if len(replies) != 1 {
		t.Fatalf("thread has %d replies, want 1", len(replies))
	}
	got := replies[0].Text
	if !strings.HasPrefix(got, ":x: Gate failed · stage 1/3") || !strings.Contains(got, "5.2 &gt; 1 (5xx per second) &lt;rate(") {
		t.Errorf("thread reply = %q, want the gate's reason, escaped", got)
	}
}

// TestNotifierConcurrentEventsPostOnce checks that events racing for a
// release without a message yet still make one message.
func TestNotifierConcurrentEventsPostOnce(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			err := e.app.Notifier.Notify(context.Background(), event(release.ReasonWaitingForGate, fixture(), "", t0.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if msgs := e.slack.Channel(testChannel); len(msgs) != 1 || msgs[0].Edits != 7 {
		t.Errorf("want 1 message edited 7 times, got %+v", msgs)
	}
}

func TestNotifierRepostsDeletedMessage(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageStarted, fixture(), "", t0)); err != nil {
		t.Fatal(err)
	}
	first := e.slack.Channel(testChannel)[0]
	e.slack.Delete(testChannel, first.TS)

	if err := e.app.Notifier.Notify(ctx, event(release.ReasonPaused, pausedByGate(fixture()), "", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageStarted, fixture(), "", t0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 || msgs[0].TS == first.TS || msgs[0].Edits != 1 {
		t.Errorf("want one new message, edited once after it was posted; got %+v", msgs)
	}
}

func TestNotifierReturnsSlackErrors(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	e.slack.set(func(f *fakeSlack) { f.failPost = "channel_not_found" })
	err := e.app.Notifier.Notify(context.Background(), event(release.ReasonStageStarted, fixture(), "", t0))
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("Notify = %v, want Slack's error", err)
	}
	// Nothing was stored, so once Slack works the message is posted.
	e.slack.set(func(f *fakeSlack) { f.failPost = "" })
	if err := e.app.Notifier.Notify(context.Background(), event(release.ReasonStageStarted, fixture(), "", t0)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.slack.Channel(testChannel)); n != 1 {
		t.Errorf("channel has %d messages, want 1", n)
	}
}

func TestNotifierGivesUpOnASlowSlack(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	e.app.Notifier.timeout = 50 * time.Millisecond
	e.slack.mu.Lock() // Slack hangs
	defer e.slack.mu.Unlock()
	start := time.Now()
	err := e.app.Notifier.Notify(context.Background(), event(release.ReasonStageStarted, fixture(), "", t0))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Notify = %v after %s, want a timeout within the notifier's bound", err, time.Since(start))
	}
}

func TestNotifierRemindsInTheThread(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := pausedByGate(fixture())
	if err := e.app.Notifier.Notify(context.Background(), event(release.ReasonPaused, r, "gate error-rate failed", t0.Add(4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Notifier.Notify(context.Background(), event(release.ReasonStillPaused, r, "waiting for a person for 30m0s", t0.Add(34*time.Minute))); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 || msgs[0].Edits != 1 {
		t.Fatalf("want the one message edited once, got %+v", msgs)
	}
	var replies []string
	for _, m := range e.slack.Thread(testChannel, msgs[0].TS) {
		replies = append(replies, m.Text)
	}
	if len(replies) == 0 || !strings.Contains(replies[len(replies)-1], "Still waiting for approval") || !strings.Contains(replies[len(replies)-1], "30m0s") {
		t.Errorf("thread replies %q, want a reminder saying how long it has waited", replies)
	}
}

package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

const prodChannel = "C0PROD"

// TestNotifierRoutesByEnvironment: a release's message goes to its
// environment's channel, and to the default channel for other environments.
func TestNotifierRoutesByEnvironment(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	e.channels = map[string]string{"prod": prodChannel}
	e.restart(ModeHTTP)
	ctx := context.Background()

	prod := fixture()
	staging := fixture()
	staging.ID, staging.Environment = "r000000000008", "staging"
	for _, r := range []release.Release{prod, staging} {
		if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageStarted, r, "", t0)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.slack.Channel(prodChannel); len(got) != 1 || !strings.Contains(got[0].Text, "on prod") {
		t.Errorf("%s holds %+v, want the prod release's message", prodChannel, got)
	}
	if got := e.slack.Channel(testChannel); len(got) != 1 || !strings.Contains(got[0].Text, "on staging") {
		t.Errorf("%s holds %+v, want the staging release's message", testChannel, got)
	}
}

// TestNotifierKeepsTheChannelItPostedIn: after the config routes prod
// elsewhere, a release already announced is still edited, and replied to,
// where its message is.
func TestNotifierKeepsTheChannelItPostedIn(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	r := fixture()
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonStageStarted, r, "", t0)); err != nil {
		t.Fatal(err)
	}

	e.channels = map[string]string{"prod": prodChannel}
	e.restart(ModeHTTP)
	if err := e.app.Notifier.Notify(ctx, event(release.ReasonGateFailed, pausedByGate(r), "5.2 > 1", t0.Add(4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := e.slack.Channel(prodChannel); len(got) != 0 {
		t.Errorf("%s got %d messages, want none: the release's message is elsewhere", prodChannel, len(got))
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 || msgs[0].Edits != 1 {
		t.Fatalf("want the first message edited once, got %+v", msgs)
	}
	if got := e.slack.Thread(testChannel, msgs[0].TS); len(got) != 1 {
		t.Errorf("thread has %d replies, want the gate failure", len(got))
	}
}

// TestNotifierHoldsBackMinorReplies: below minSeverity no thread reply is
// posted, but the message still shows every event.
func TestNotifierHoldsBackMinorReplies(t *testing.T) {
	cases := []struct {
		min  notify.Severity
		want []string // thread reply prefixes, in order
	}{
		{notify.Info, []string{":white_check_mark: Gate passed", ":x: Gate failed", ":leftwards_arrow_with_hook: Rolled back"}},
		{notify.Warning, []string{":x: Gate failed", ":leftwards_arrow_with_hook: Rolled back"}},
		{notify.Error, []string{":leftwards_arrow_with_hook: Rolled back"}},
	}
	for _, c := range cases {
		t.Run(string(c.min), func(t *testing.T) {
			e := newEnv(t, ModeHTTP)
			e.minSev = c.min
			e.restart(ModeHTTP)
			ctx := context.Background()
			r := fixture()
			r.Phase, r.Percent = release.Verifying, 10
			rolledBack := pausedByGate(r)
			rolledBack.Phase, rolledBack.Percent = release.RolledBack, 0
			events := []release.Event{
				event(release.ReasonGatePassed, r, "pods: 1/1 available", t0),
				event(release.ReasonGateFailed, pausedByGate(r), "5.2 > 1", t0.Add(time.Minute)),
				event(release.ReasonRolledBack, rolledBack, "rolled back to v1-3-0", t0.Add(2*time.Minute)),
			}
			for _, ev := range events {
				if err := e.app.Notifier.Notify(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			msgs := e.slack.Channel(testChannel)
			if len(msgs) != 1 || msgs[0].Edits != 2 || !strings.Contains(msgs[0].Text, "rolled back") {
				t.Fatalf("want one message edited twice, showing the rollback; got %+v", msgs)
			}
			replies := e.slack.Thread(testChannel, msgs[0].TS)
			if len(replies) != len(c.want) {
				t.Fatalf("thread has %d replies, want %d: %+v", len(replies), len(c.want), replies)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(replies[i].Text, w) {
					t.Errorf("reply %d = %q, want it to start with %q", i, replies[i].Text, w)
				}
			}
		})
	}
}

func TestNewRejectsBadRouting(t *testing.T) {
	base := Options{BotToken: "xoxb-1", SigningSecret: "s", Channel: testChannel, Store: newEnv(t, ModeHTTP).st, Ops: &ops.Service{}, Identities: gitlabByEmail}
	bad := base
	bad.MinSeverity = "debug"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "minSeverity") {
		t.Errorf("New with minSeverity debug = %v, want an error naming it", err)
	}
	bad = base
	bad.Channels = map[string]string{"prod": ""}
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "channels.prod") {
		t.Errorf("New with an empty channel = %v, want an error naming it", err)
	}
}

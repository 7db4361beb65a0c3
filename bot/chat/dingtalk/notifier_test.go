package dingtalk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testRelease is a canary release of app in prod, stored as id.
func testRelease(id, app string) release.Release {
	return release.Release{
		ID: id, App: app, Project: "group/" + app, Environment: "prod", Cluster: "c1", Namespace: app,
		Strategy: release.Canary, TriggeredBy: "alice", PipelineID: 42, WebURL: "https://gitlab.example/group/" + app + "/-/pipelines/42",
		From: release.Revision{Name: "v1", Image: app + ":1"}, To: release.Revision{Name: "v2", Image: app + ":2"},
		Stages: []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50, Continue: release.Manual}, {Target: 100, Continue: release.Auto}},
		Params: templates.Params{Ports: []templates.Port{{Port: 80}}}, Replicas: 2, MinAvailable: 2,
		Phase: release.Progressing, Created: t0, Updated: t0,
	}
}

func event(r release.Release, reason release.Reason, at time.Time) release.Event {
	return release.Event{Reason: reason, Release: r, Summary: release.Describe(r, at), At: at}
}

func newTestNotifier(t *testing.T, robot Sender, clock *fakeclock.Clock, window time.Duration) *Notifier {
	now := clock.Now()
	tk := testTokens(t, &now)
	tk.Now = clock.Now
	n, err := NewNotifier(NotifierOptions{Robot: robot, Tokens: tk, PublicURL: "https://shipbot.example/",
		Window: window, Now: clock.Now, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sent is one message the fake robot received, stamped with the fake time.
type sent struct {
	at    time.Time
	title string
	text  string
	btns  []string
}

func drain(srv *dingTalkServer, at time.Time) []sent {
	var out []sent
	for {
		select {
		case body := <-srv.got:
			out = append(out, decodeSent(body, at))
		default:
			return out
		}
	}
}

func decodeSent(body map[string]any, at time.Time) sent {
	s := sent{at: at}
	m, ok := body["actionCard"].(map[string]any)
	if !ok {
		m, _ = body["markdown"].(map[string]any)
	}
	s.title, _ = m["title"].(string)
	s.text, _ = m["text"].(string)
	btns, _ := m["btns"].([]any)
	for _, b := range btns {
		s.btns = append(s.btns, b.(map[string]any)["title"].(string))
	}
	return s
}

func TestNotifierStaysUnderTheLimitAndEndsWithTheFinalState(t *testing.T) {
	clock := fakeclock.New(t0)
	srv := newDingTalkServer(t, "SECsecret")
	n := newTestNotifier(t, srv.robot(clock.Now), clock, time.Minute)
	ctx := t.Context()

	finals := map[string]release.Phase{"a1": release.Succeeded, "a2": release.RolledBack, "a3": release.Aborted, "a4": release.Paused}
	apps := []string{"a1", "a2", "a3", "a4"}
	var got []sent
	events := 0
	// Three minutes of four busy releases: an event each per second.
	for sec := range 180 {
		for i, app := range apps {
			r := testRelease(fmt.Sprintf("r%012d", i+1), app)
			r.Percent = sec % 10
			n.Notify(ctx, event(r, release.ReasonWaitingForGate, clock.Now()))
			events++
		}
		n.flush(ctx)
		got = append(got, drain(srv, clock.Now())...)
		clock.Advance(time.Second)
	}
	for i, app := range apps {
		r := testRelease(fmt.Sprintf("r%012d", i+1), app)
		r.Phase, r.Percent = finals[app], 100
		n.Notify(ctx, event(r, release.Reason(finals[app]), clock.Now()))
		events++
	}
	for range 180 {
		n.flush(ctx)
		got = append(got, drain(srv, clock.Now())...)
		clock.Advance(time.Second)
	}

	if n.waiting() != 0 {
		t.Fatalf("%d releases still waiting", n.waiting())
	}
	t.Logf("%d messages for %d events", len(got), events)
	if len(got) >= events || len(got) < 40 {
		t.Errorf("%d messages for %d events", len(got), events)
	}
	for i := range got {
		inWindow := 0
		for _, s := range got[i:] {
			if s.at.Sub(got[i].at) <= time.Minute {
				inWindow++
			}
		}
		if inWindow > DefaultLimit {
			t.Fatalf("%d messages in the minute from %s", inWindow, got[i].at.Format(time.TimeOnly))
		}
	}
	for _, app := range apps {
		var last sent
		for _, s := range got {
			if strings.HasPrefix(s.title, app+" ") {
				last = s
			}
		}
		if !strings.Contains(last.text, "**"+string(finals[app])+"**") {
			t.Errorf("last message for %s: %q", app, last.text)
		}
	}
}

func TestNotifierPausesAfterARateLimitAnswer(t *testing.T) {
	clock := fakeclock.New(t0)
	srv := newDingTalkServer(t, "SECsecret")
	n := newTestNotifier(t, srv.robot(clock.Now), clock, 0)
	ctx := t.Context()
	srv.setAnswer(func(w http.ResponseWriter, _ map[string]any) {
		io.WriteString(w, `{"errcode":130101,"errmsg":"send too fast"}`)
	})
	r := testRelease("r000000000001", "web")
	n.Notify(ctx, event(r, release.ReasonStageStarted, clock.Now()))
	n.flush(ctx)
	if len(drain(srv, clock.Now())) != 1 {
		t.Fatal("first message not tried")
	}
	srv.setAnswer(func(w http.ResponseWriter, _ map[string]any) { io.WriteString(w, `{"errcode":0}`) })
	r.Phase = release.Paused
	n.Notify(ctx, event(r, release.ReasonPaused, clock.Now()))
	clock.Advance(DefaultCooldown - time.Second)
	if wait := n.flush(ctx); wait != time.Second || len(drain(srv, clock.Now())) != 0 {
		t.Fatalf("sent during the cooldown (wait %s)", wait)
	}
	clock.Advance(time.Second)
	n.flush(ctx)
	out := drain(srv, clock.Now())
	if len(out) != 1 || !strings.Contains(out[0].text, "**Paused**") || n.waiting() != 0 {
		t.Errorf("after the cooldown: %+v", out)
	}
}

// blockedRobot never answers until released.
type blockedRobot struct {
	release chan struct{}
	calls   chan Message
}

func (b *blockedRobot) Send(ctx context.Context, m Message) error {
	b.calls <- m
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

func TestNotifyNeverWaitsForTheRobot(t *testing.T) {
	clock := fakeclock.New(t0)
	robot := &blockedRobot{release: make(chan struct{}), calls: make(chan Message, 10)}
	n := newTestNotifier(t, robot, clock, 0)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	r := testRelease("r000000000001", "web")
	n.Notify(ctx, event(r, release.ReasonStageStarted, clock.Now()))
	<-robot.calls // Run is now stuck in Send
	start := time.Now()
	for i := range 1000 {
		r.Percent = i % 100
		n.Notify(ctx, event(r, release.ReasonWaitingForGate, clock.Now()))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("1000 Notify calls took %s", d)
	}
	if n.waiting() != 1 {
		t.Errorf("%d waiting, want the one latest state", n.waiting())
	}
	close(robot.release)
	m := <-robot.calls
	if !strings.Contains(m.Text, "99 %") {
		t.Errorf("second message is not the latest state: %s", m.Text)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestNotifierFiltersReasons(t *testing.T) {
	clock := fakeclock.New(t0)
	n := newTestNotifier(t, &blockedRobot{}, clock, 0)
	n.o.Reasons = []release.Reason{release.ReasonPaused}
	n.Notify(t.Context(), event(testRelease("r1", "web"), release.ReasonGatePassed, t0))
	if n.waiting() != 0 {
		t.Error("filtered reason was queued")
	}
}

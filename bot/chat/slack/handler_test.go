package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

func echoServer(a *App) *echo.Echo {
	e := echo.New()
	a.Register(e)
	return e
}

// showPaused has the notifier post the release's message, as the engine's
// Paused event would, and returns the message's ts.
func (e *env) showPaused(r release.Release) string {
	e.t.Helper()
	if err := e.app.Notifier.Notify(context.Background(), event(release.ReasonPaused, r, "", e.now)); err != nil {
		e.t.Fatal(err)
	}
	return e.slack.Channel(testChannel)[0].TS
}

func TestHandlerRecordsIntent(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	ts := e.showPaused(r)

	code, took := e.post(e.click(alice, ts, "shipbot:continue", r.ID), testSecret, e.now)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if took > time.Second {
		t.Errorf("answered after %s; Slack gives up after 3 s", took)
	}

	// Recorded, not applied: the handler only records; the engine acts at its next Step.
	got := e.get(r.ID)
	in := pendingIntents(got)
	if len(in) != 1 || in[0].Kind != release.IntentContinue || in[0].Actor != "alice" || in[0].Surface != release.SurfaceSlack {
		t.Fatalf("pending intents = %+v, want one continue by alice via slack", in)
	}
	if got.Phase != release.Paused || got.Stage != 0 {
		t.Errorf("release is %s at stage %d; recording must not move it", got.Phase, got.Stage)
	}

	e.app.Close()
	msg := e.slack.Channel(testChannel)[0]
	if !strings.Contains(render(msg.Blocks.BlockSet), "continue requested by alice via slack") {
		t.Errorf("message does not show the request:\n%s", render(msg.Blocks.BlockSet))
	}
	if eph := e.slack.Ephemerals(); len(eph) != 0 {
		t.Errorf("success told the clicker %q; the message update is the answer", eph)
	}
}

func TestHandlerRecordsPromote(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	ts := e.showPaused(r)
	if code, _ := e.post(e.click(bob, ts, "shipbot:promote", r.ID+":50"), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	in := pendingIntents(e.get(r.ID))
	if len(in) != 1 || in[0].String() != "promote to 50 %" || in[0].Actor != "bob" {
		t.Fatalf("pending intents = %+v, want promote to 50 %% by bob", in)
	}
}

func TestHandlerRejectsUnsignedRequests(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		at     time.Duration
	}{
		{"wrong secret", "not-the-secret", 0},
		{"timestamp 6 minutes old", testSecret, -6 * time.Minute},
		{"timestamp 6 minutes ahead", testSecret, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ModeHTTP)
			r := e.createPaused()
			code, _ := e.post(e.click(alice, "1700000000.000001", "shipbot:continue", r.ID), tt.secret, e.now.Add(tt.at))
			if code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", code)
			}
			if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
				t.Errorf("recorded %+v from an unsigned request", in)
			}
		})
	}
}

func TestHandlerRejectsTamperedBody(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	signed := "payload=x"
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader("payload="+e.click(alice, "1", "shipbot:abort", r.ID)))
	sign(req.Header, testSecret, e.now, signed)
	if code, _ := e.serve(req); code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", code)
	}
	req = httptest.NewRequest(http.MethodPost, Path, strings.NewReader("payload=x"))
	if code, _ := e.serve(req); code != http.StatusUnauthorized {
		t.Errorf("no signature: status %d, want 401", code)
	}
}

func TestHandlerCapsBody(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	body := "payload=" + strings.Repeat("x", maxBody)
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	sign(req.Header, testSecret, e.now, body)
	if code, _ := e.serve(req); code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", code)
	}
}

// TestHandlerRefusals checks that a click shipbot will not record still
// gets a 200, records nothing and tells the clicker why, privately.
func TestHandlerRefusals(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		action string
		authz  func(a ops.Actor, kind release.IntentKind) error
		want   string
	}{
		{"not allowed", bob, "shipbot:rollback", func(a ops.Actor, kind release.IntentKind) error {
			return fmt.Errorf("%w: %s is a reporter on shop/checkout; %s needs developer", ops.ErrForbidden, a.Username, kind)
		}, ":no_entry: You can't rollback release `r000000000001`: bob is a reporter on shop/checkout; rollback needs developer"},
		{"not possible now", alice, "shipbot:pause", nil,
			":warning: Not recorded: it is already paused"},
		{"unknown person", "U0EVE", "shipbot:continue", nil,
			":bust_in_silhouette: shipbot could not match your Slack account to a GitLab user"},
		{"shipbot fails", alice, "shipbot:pause", func(ops.Actor, release.IntentKind) error {
			return errors.New("authz: GET https://gitlab.internal/api/v4/projects/7/members/all/3: 502 Bad Gateway")
		}, ":boom: Nothing was recorded: internal error; the details are in shipbot's log."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ModeHTTP)
			e.authz = tt.authz
			r := e.createPaused()
			ts := e.showPaused(r)
			before := e.slack.Channel(testChannel)[0]
			// Slack is slow to take the reply: the answer must not wait for it.
			hold := make(chan struct{})
			e.slack.set(func(f *fakeSlack) { f.hold = hold })

			code, _ := e.post(e.click(tt.user, ts, tt.action, r.ID), testSecret, e.now)
			close(hold)
			e.app.Close()

			if code != http.StatusOK {
				t.Errorf("status %d, want 200", code)
			}
			if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
				t.Errorf("recorded %+v", in)
			}
			eph := e.slack.Ephemerals()
			if len(eph) != 1 || !strings.HasPrefix(eph[0], tt.want) {
				t.Errorf("clicker was told %q, want %q", eph, tt.want)
			}
			if after := e.slack.Channel(testChannel)[0]; after.Edits != before.Edits {
				t.Errorf("message edited on a refusal")
			}
		})
	}
}

func TestHandlerIgnoresOtherActions(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	if code, _ := e.post(e.click(alice, "1", "someone-else:approve", r.ID), testSecret, e.now); code != http.StatusOK {
		t.Errorf("status %d, want 200", code)
	}
	e.app.Close()
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
	if eph := e.slack.Ephemerals(); len(eph) != 0 {
		t.Errorf("told the clicker %q", eph)
	}
}

func TestSocketModeHasNoRoute(t *testing.T) {
	e := newEnv(t, ModeSocket)
	r := e.createPaused()
	if code, _ := e.post(e.click(alice, "1", "shipbot:continue", r.ID), testSecret, e.now); code != http.StatusNotFound {
		t.Errorf("status %d, want 404: socket mode takes no HTTP interactions", code)
	}
}

func TestHandlerRefusesReplays(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	// slack-go checks timestamps against the wall clock too: start early
	// enough that the clock can pass this click's window and still sign new ones.
	e.now = e.now.Add(-4 * time.Minute)
	r := e.createPaused()
	ts := e.showPaused(r)
	body := url.Values{"payload": {e.click(alice, ts, "shipbot:continue", r.ID)}}.Encode()
	captured := http.Header{}
	sign(captured, testSecret, e.now, body)
	send := func(h http.Header) int {
		req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
		req.Header = h.Clone()
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		code, _ := e.serve(req)
		return code
	}
	if code := send(captured); code != http.StatusOK {
		t.Fatalf("first delivery: status %d, want 200", code)
	}
	e.app.Close() // the message refresh reads the clock this test moves
	// The engine takes the continue and the release pauses at the next stage.
	err := e.st.UpdateRelease(r.ID, func(raw []byte) ([]byte, error) {
		var cur release.Release
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		for i := range cur.Intents {
			cur.Intents[i].Done = e.now
		}
		cur.Stage = 1
		return json.Marshal(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Minute)

	upper := captured.Clone()
	upper.Set("X-Slack-Signature", "v0="+strings.ToUpper(strings.TrimPrefix(captured.Get("X-Slack-Signature"), "v0=")))
	for name, h := range map[string]http.Header{"same bytes": captured, "upper-case signature": upper} {
		if code := send(h); code != http.StatusUnauthorized {
			t.Errorf("%s replayed a minute later: status %d, want 401", name, code)
		}
	}
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Errorf("a replayed click recorded %+v", in)
	}

	// Past the window the timestamp alone refuses it, and the record is gone.
	e.now = e.now.Add(maxSkew)
	if code := send(captured); code != http.StatusUnauthorized {
		t.Errorf("replayed after the window: status %d, want 401", code)
	}
	if code, _ := e.post(e.click(bob, ts, "shipbot:pause", r.ID), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("a new click: status %d, want 200", code)
	}
	e.app.Close()
	if n, err := e.st.PruneClaims(e.now); err != nil || n != 1 {
		t.Errorf("pruned %d remembered requests (err %v), want only the first, whose window ended", n, err)
	}
}

// The memory of accepted requests is in the store: a signed click replayed
// after shipbot restarts is refused too.
func TestHandlerRefusesReplaysAfterRestart(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	ts := e.showPaused(r)
	body := url.Values{"payload": {e.click(alice, ts, "shipbot:continue", r.ID)}}.Encode()
	captured := http.Header{}
	sign(captured, testSecret, e.now, body)
	send := func() int {
		req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
		req.Header = captured.Clone()
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		code, _ := e.serve(req)
		return code
	}
	if code := send(); code != http.StatusOK {
		t.Fatalf("first delivery: status %d, want 200", code)
	}
	e.restart(ModeHTTP)
	if code := send(); code != http.StatusUnauthorized {
		t.Errorf("replayed after a restart: status %d, want 401", code)
	}
	if in := pendingIntents(e.get(r.ID)); len(in) != 1 {
		t.Errorf("pending intents %+v, want the first click's only", in)
	}
}

// A button carries the stage it was drawn for: clicked once the release
// has moved on, it records nothing and tells the clicker why.
func TestHandlerRefusesAStaleButton(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	ts := e.showPaused(r)
	stale := e.click(alice, ts, "shipbot:continue", r.ID+"@1")
	err := e.st.UpdateRelease(r.ID, func(raw []byte) ([]byte, error) {
		var cur release.Release
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		cur.Stage = 1 // the release has moved to stage 2 and paused there
		return json.Marshal(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.post(stale, testSecret, e.now); code != http.StatusOK {
		t.Fatalf("status %d, want 200: Slack shows the refusal, not an error", code)
	}
	e.app.Close()
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Errorf("a button drawn for stage 1 recorded %+v at stage 2", in)
	}
	if eph := e.slack.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0], "moved to stage 2") {
		t.Errorf("told the clicker %q, want that the release moved to stage 2", eph)
	}
}

// A user linked by Slack id in shipbot.yaml acts without shipbot asking
// Slack for her email: a users.info failure does not block her click.
func TestHandlerResolvesALinkedUserWithoutSlack(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	ts := e.showPaused(r)
	if code, _ := e.post(e.click(carol, ts, "shipbot:continue", r.ID), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	e.app.Close()
	if in := pendingIntents(e.get(r.ID)); len(in) != 1 || in[0].Actor != "carol" {
		t.Errorf("pending intents %+v, want carol's continue", in)
	}
	if eph := e.slack.Ephemerals(); len(eph) != 0 {
		t.Errorf("told carol %q", eph)
	}
}

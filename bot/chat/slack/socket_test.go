package slack

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shipbot/shipbot/deployer/release"
)

// TestSocketModeRecordsIntent connects over Socket Mode to the in-process
// Slack, which sends one button click: shipbot acks the envelope and records
// the intent, as over HTTP.
func TestSocketModeRecordsIntent(t *testing.T) {
	e := newEnv(t, ModeSocket)
	r := e.createPaused()
	ts := e.showPaused(r)
	payload := json.RawMessage(e.click(alice, ts, "shipbot:promote-full", r.ID))
	acks := make(chan string, 1)
	e.slack.set(func(f *fakeSlack) {
		f.ws = func(c *websocket.Conn) {
			_ = c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
			_ = c.WriteJSON(map[string]any{"type": "interactive", "envelope_id": "env-1", "payload": payload})
			var ack struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if err := c.ReadJSON(&ack); err == nil {
				acks <- ack.EnvelopeID
			}
			for { // hold the connection until shipbot closes it
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.app.Run(ctx) }()
	select {
	case id := <-acks:
		if id != "env-1" {
			t.Errorf("acked envelope %q, want env-1", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack within 10 s")
	}
	eventually(t, func() bool { return len(pendingIntents(e.get(r.ID))) == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	e.app.Close()

	got := e.get(r.ID)
	in := pendingIntents(got)
	if in[0].Kind != release.IntentPromoteFull || in[0].Actor != "alice" || got.Phase != release.Paused {
		t.Errorf("intents %+v on a %s release, want a pending promote-full by alice on a paused one", in, got.Phase)
	}
}

// eventually polls cond for up to 5 s: Socket Mode acks before it records.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}

package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

func TestAudienceTellsEveryoneAndSaysWho(t *testing.T) {
	var got []Reason
	ok := NotifierFunc(func(_ context.Context, e Event) error { got = append(got, e.Reason); return nil })
	broken := NotifierFunc(func(context.Context, Event) error { return errors.New("channel_not_found") })
	same := NotifierFunc(func(context.Context, Event) error {
		return fmt.Errorf("status already running: %w", ErrUnchanged)
	})
	ev := Event{Reason: ReasonPaused, Release: Release{ID: "r1"}}
	cases := []struct {
		name    string
		a       Audience
		msg     string
		wantErr string
	}{
		{"one fails", Audience{{"slack", broken}, {"gitlab", ok}, {"webhook audit", ok}},
			"Paused announced to gitlab, webhook audit; failed: slack (channel_not_found)", "channel_not_found"},
		{"one unchanged", Audience{{"gitlab", same}, {"slack", ok}}, "Paused announced to slack; unchanged: gitlab", ""},
		{"only unchanged", Audience{{"gitlab", same}}, "Paused announced to no one; unchanged: gitlab", ""},
	}
	for _, c := range cases {
		msg, _, err := c.a.announceTo(context.Background(), ev, nil)
		if msg != c.msg {
			t.Errorf("%s: history says %q, want %q", c.name, msg, c.msg)
		}
		if gotErr := fmt.Sprint(err); (c.wantErr == "" && err != nil) || (c.wantErr != "" && gotErr != c.wantErr) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
	}
	if len(got) != 3 {
		t.Errorf("the working notifiers got %v, want the event 3 times", got)
	}
}

func TestStepperNotesWhoAnAudienceTold(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := st.CreateRelease(func(id string) ([]byte, error) { return json.Marshal(Release{ID: id, App: "web"}) })
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	history := func(e *Stepper) []Entry {
		t.Helper()
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r.History
	}
	ok := NotifierFunc(func(context.Context, Event) error { return nil })

	told, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Notifier: Audience{{"slack", ok}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := announceNow(told, Event{Reason: ReasonPaused, Release: Release{ID: id}, At: at}); err != nil {
		t.Fatal(err)
	}
	h := history(told)
	want := Entry{At: at, Actor: EngineActor, Kind: EntryNotified, Message: "Paused announced to slack"}
	if len(h) != 1 || h[0].Kind != want.Kind || h[0].Message != want.Message || !h[0].At.Equal(at) || h[0].Actor != want.Actor {
		t.Errorf("history %+v, want one entry like %+v", h, want)
	}

	// A plain notifier, or an audience of no one, leaves no entry.
	for name, n := range map[string]Notifier{"plain": ok, "empty": Audience{}} {
		e, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Notifier: n})
		if err != nil {
			t.Fatal(err)
		}
		if err := announceNow(e, Event{Reason: ReasonPaused, Release: Release{ID: id}, At: at}); err != nil {
			t.Fatal(err)
		}
		if got := len(history(e)); got != 1 {
			t.Errorf("%s notifier: %d history entries, want still 1", name, got)
		}
	}
}

// announceNow puts ev in the outbox, as a save does, and delivers it.
func announceNow(e *Stepper, ev Event) error {
	if _, err := e.store.Update(func(tx *store.Tx) error { return announce(tx, []Event{ev}) }); err != nil {
		return err
	}
	_, err := e.Deliver(context.Background())
	return err
}

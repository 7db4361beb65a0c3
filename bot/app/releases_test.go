package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/deployer/release"
)

func TestAnnouncerTellsEveryoneAndNotesWho(t *testing.T) {
	var got []release.Reason
	ok := release.NotifierFunc(func(_ context.Context, e release.Event) error { got = append(got, e.Reason); return nil })
	broken := release.NotifierFunc(func(context.Context, release.Event) error { return errors.New("channel_not_found") })
	type note struct {
		id, msg string
		at      time.Time
	}
	var notes []note
	a := &announcer{
		notifiers: []namedNotifier{{"slack", broken}, {"gitlab", ok}, {"webhook audit", ok}},
		note: func(_ context.Context, id string, at time.Time, msg string) error {
			notes = append(notes, note{id, msg, at})
			return nil
		},
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	err := a.Notify(context.Background(), release.Event{Reason: release.ReasonPaused, Release: release.Release{ID: "r1"}, At: at})
	if err == nil || err.Error() != "channel_not_found" {
		t.Errorf("error %v, want slack's", err)
	}
	if len(got) != 2 {
		t.Errorf("the notifiers after the failing one got %v, want the event twice", got)
	}
	want := note{"r1", "Paused announced to gitlab, webhook audit; failed: slack (channel_not_found)", at}
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("notes %+v, want [%+v]", notes, want)
	}

	// A notifier with nothing new to say is neither told nor failed.
	same := release.NotifierFunc(func(context.Context, release.Event) error {
		return fmt.Errorf("status already running: %w", notify.ErrUnchanged)
	})
	quiet := &announcer{notifiers: []namedNotifier{{"gitlab", same}, {"slack", ok}}, note: a.note}
	if err := quiet.Notify(context.Background(), release.Event{Reason: release.ReasonPaused, Release: release.Release{ID: "r1"}, At: at}); err != nil {
		t.Errorf("an unchanged notifier made Notify fail: %v", err)
	}
	quietOnly := &announcer{notifiers: []namedNotifier{{"gitlab", same}}, note: a.note}
	if err := quietOnly.Notify(context.Background(), release.Event{Reason: release.ReasonPaused, Release: release.Release{ID: "r1"}, At: at}); err != nil {
		t.Errorf("an unchanged notifier made Notify fail: %v", err)
	}
	wantQuiet := []note{
		{"r1", "Paused announced to slack; unchanged: gitlab", at},
		{"r1", "Paused announced to no one; unchanged: gitlab", at},
	}
	if len(notes) != 3 || notes[1] != wantQuiet[0] || notes[2] != wantQuiet[1] {
		t.Errorf("notes %+v, want %+v after the first", notes, wantQuiet)
	}
	notes = notes[:1]

	// Nobody to tell: nothing is written.
	empty := &announcer{note: a.note}
	if err := empty.Notify(context.Background(), release.Event{Reason: release.ReasonPaused, Release: release.Release{ID: "r1"}}); err != nil || len(notes) != 1 {
		t.Errorf("an announcer without notifiers wrote %d notes, err %v", len(notes)-1, err)
	}
}

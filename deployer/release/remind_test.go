package release

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// reminderRig is an engine on a real store with a paused release, a clock
// the test moves and the events it sent.
type reminderRig struct {
	st     *store.Store
	clock  *fakeclock.Clock
	id     string
	mu     sync.Mutex
	events []Event
}

func newReminderRig(t *testing.T) (*reminderRig, func() *Stepper) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	rig := &reminderRig{clock: fakeclock.New(t0)}
	open := func() *Stepper {
		if rig.st != nil {
			rig.st.Close()
		}
		st, err := store.Open(path, store.Options{LockTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rig.st = st
		e, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Clock: rig.clock, Log: testLogger(),
			Notifier: NotifierFunc(func(_ context.Context, ev Event) error {
				rig.mu.Lock()
				defer rig.mu.Unlock()
				rig.events = append(rig.events, ev)
				return nil
			})})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Cleanup(func() { rig.st.Close() })
	e := open()
	r, err := e.Create(t.Context(), storedRelease())
	if err != nil {
		t.Fatal(err)
	}
	rig.id = r.ID
	// Paused at t0 after stage 1, as the engine leaves it.
	err = rig.st.UpdateRelease(r.ID, func(raw []byte) ([]byte, error) {
		var cur Release
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		cur.Phase, cur.Stage, cur.Percent = Paused, 1, 10
		cur.History = append(cur.History, Entry{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused, Stage: 1, Message: "Progressing → Paused"})
		return json.Marshal(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rig, open
}

func (r *reminderRig) sent() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func TestRemindersFollowTheScheduleAcrossRestarts(t *testing.T) {
	rig, open := newReminderRig(t)
	e := open()
	s := Reminders{After: 30 * time.Minute, Every: time.Hour}
	remind := func() time.Time {
		t.Helper()
		next, err := e.Remind(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}

	rig.clock.Advance(29 * time.Minute)
	if next := remind(); len(rig.sent()) != 0 || !next.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("before 30m: sent %d, next %s; want none and next at 30m", len(rig.sent()), next)
	}
	rig.clock.Advance(2 * time.Minute) // 31m
	next := remind()
	remind() // the same slot again: nothing new
	if got := rig.sent(); len(got) != 1 || got[0].Reason != ReasonStillPaused || got[0].Message != "waiting for a person for 31m0s" {
		t.Fatalf("at 31m: events %+v; want one StillPaused", got)
	}
	if !next.Equal(t0.Add(90 * time.Minute)) {
		t.Errorf("next reminder at %s, want 1h after the first slot (t0+90m)", next)
	}

	// A restart does not resend the reminder of the slot already served.
	e = open()
	rig.clock.Advance(time.Hour) // 1h31m
	remind()
	remind()
	if got := rig.sent(); len(got) != 2 {
		t.Fatalf("after restart at 1h31m: %d events, want 2", len(got))
	}
	r, err := e.Get(t.Context(), rig.id)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, h := range r.History {
		if h.Kind == EntryReminder {
			entries = append(entries, h.Message)
		}
	}
	if len(entries) != 2 || entries[0] != "still paused after 31m0s; reminded" || entries[1] != "still paused after 1h31m0s; reminded" {
		t.Errorf("reminder history %q", entries)
	}

	// Once it moves on, no more reminders; a later pause starts a new schedule.
	err = rig.st.UpdateRelease(rig.id, func(raw []byte) ([]byte, error) {
		var cur Release
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, err
		}
		cur.Phase = Progressing
		return json.Marshal(cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	rig.clock.Advance(5 * time.Hour)
	if next := remind(); len(rig.sent()) != 2 || !next.IsZero() {
		t.Errorf("a progressing release was reminded (%d events) or scheduled (%s)", len(rig.sent()), next)
	}
}

func TestRemindersOff(t *testing.T) {
	rig, open := newReminderRig(t)
	e := open()
	rig.clock.Advance(48 * time.Hour)
	if next, err := e.Remind(t.Context(), Reminders{}); err != nil || !next.IsZero() || len(rig.sent()) != 0 {
		t.Errorf("with no schedule: next %s, err %v, %d events", next, err, len(rig.sent()))
	}
	// After but no Every: one reminder only.
	s := Reminders{After: time.Minute}
	e.Remind(t.Context(), s)
	rig.clock.Advance(48 * time.Hour)
	e.Remind(t.Context(), s)
	if len(rig.sent()) != 1 {
		t.Errorf("with After only: %d events, want 1", len(rig.sent()))
	}
}

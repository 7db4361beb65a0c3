package release

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// frozenAlways holds every release: starting one emits Held and saves it,
// which needs the store only, no cluster.
type frozenAlways struct{ before func() }

func (f frozenAlways) Frozen(context.Context, Release, time.Time) (Freeze, bool, error) {
	if f.before != nil {
		f.before()
	}
	return Freeze{Source: "shipbot.yaml", Reason: "weekend", Until: t0.Add(48 * time.Hour)}, true, nil
}

// sink counts the events a listener took, by reason; fail makes it refuse.
type sink struct {
	mu   sync.Mutex
	fail error
	took map[Reason]int
	ids  []string
}

func (s *sink) Notify(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.took == nil {
		s.took = map[Reason]int{}
	}
	s.took[e.Reason]++
	s.ids = append(s.ids, e.ID)
	return nil
}

func (s *sink) count(r Reason) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.took[r]
}

// outboxEngine opens the store file at path and a Stepper on it that tells
// audience; its release is held by a freeze.
func outboxEngine(t *testing.T, path string, clock Clock, audience Audience, freezes Freezes) (*store.Store, *Stepper) {
	t.Helper()
	st, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewStepper(Options{Store: st, Clusters: ClusterMap{}, Clock: clock, Notifier: audience, Freezes: freezes, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return st, e
}

func pendingRelease(t *testing.T, st *store.Store) string {
	t.Helper()
	id, err := st.CreateRelease(func(id string) ([]byte, error) {
		return json.Marshal(Release{ID: id, App: "web", Environment: "production", Cluster: "local", Namespace: "shop",
			Phase: Pending, Strategy: Canary, Stages: []Stage{{Target: 100}}, Created: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A sink that is down when a release is held hears of it once it is back,
// after a restart, exactly once; another sink that took it at the time is
// not told again.
func TestOutboxDeliversAfterRestartExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	clock := fakeclock.New(t0)
	chat, gitlab := &sink{fail: errors.New("chat is down")}, &sink{}
	audience := Audience{{"chat", chat}, {"gitlab", gitlab}}
	st, e := outboxEngine(t, path, clock, audience, frozenAlways{})
	id := pendingRelease(t, st)
	if _, err := e.Step(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := gitlab.count(ReasonHeld); n != 1 {
		t.Fatalf("gitlab took Held %d times at once, want 1", n)
	}
	if err := st.Close(); err != nil { // the process ends with chat still down
		t.Fatal(err)
	}

	chat.mu.Lock()
	chat.fail = nil
	chat.mu.Unlock()
	clock.Advance(time.Minute)
	st, e = outboxEngine(t, path, clock, audience, frozenAlways{})
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sched := &Scheduler{Stepper: e, Log: testLogger()}
	done := make(chan struct{})
	go func() { defer close(done); _ = sched.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for chat.count(ReasonHeld) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if _, err := e.Deliver(context.Background()); err != nil { // once more: nothing is left to send
		t.Fatal(err)
	}
	if c, g := chat.count(ReasonHeld), gitlab.count(ReasonHeld); c != 1 || g != 1 {
		t.Errorf("after the restart chat took Held %d times and gitlab %d, want 1 and 1", c, g)
	}
	if len(chat.ids) != 1 || len(gitlab.ids) != 1 || chat.ids[0] == "" || chat.ids[0] != gitlab.ids[0] {
		t.Errorf("event ids: chat %v, gitlab %v; want one, the same, not empty", chat.ids, gitlab.ids)
	}
	left, err := st.Outbox(10)
	if err != nil || len(left) != 0 {
		t.Errorf("outbox holds %v (%v), want nothing", left, err)
	}
	var notes []string
	for _, h := range mustGet(t, e, id).History {
		if h.Kind == EntryNotified {
			notes = append(notes, h.Message)
		}
	}
	want := []string{"Held announced to gitlab; failed: chat (chat is down) (attempt 1 of 12)", "Held announced to chat (attempt 2 of 12)"}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("history notes\n%s\nwant\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}
}

// A step that emits an event and then fails to save it announces nothing:
// the change did not happen.
func TestOutboxSendsNothingForAChangeNotSaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	chat := &sink{}
	var st *store.Store
	var id string
	// The freeze check runs after the step read the release and before it
	// saves the hold: spoil the stored document so that the save fails.
	spoil := frozenAlways{before: func() {
		err := st.UpdateRelease(id, func([]byte) ([]byte, error) { return []byte(`{"phase": 7}`), nil })
		if err != nil {
			t.Error(err)
		}
	}}
	st, e := outboxEngine(t, path, fakeclock.New(t0), Audience{{"chat", chat}}, spoil)
	defer st.Close()
	id = pendingRelease(t, st)
	if _, err := e.Step(context.Background(), id); err == nil {
		t.Fatal("step saved a release whose stored document is spoiled")
	}
	if _, err := e.Deliver(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := chat.count(ReasonHeld); n != 0 {
		t.Errorf("chat was told Held %d times of a hold that was never saved", n)
	}
	if left, err := st.Outbox(10); err != nil || len(left) != 0 {
		t.Errorf("outbox holds %v (%v), want nothing", left, err)
	}
}

func mustGet(t *testing.T, e *Stepper, id string) Release {
	t.Helper()
	r, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A listener that fails an event of one release hears that release's later
// events only after it, in order, while other releases' events go on.
func TestOutboxKeepsEachReleasesOrder(t *testing.T) {
	clock := fakeclock.New(t0)
	var mu sync.Mutex
	var heard []string
	down := true
	chat := NotifierFunc(func(_ context.Context, e Event) error {
		mu.Lock()
		defer mu.Unlock()
		if down && e.Release.ID == "a" {
			return errors.New("chat is down")
		}
		heard = append(heard, e.Release.ID+" "+e.Message)
		return nil
	})
	st, e := outboxEngine(t, filepath.Join(t.TempDir(), "shipbot.db"), clock, Audience{{"chat", chat}}, nil)
	defer st.Close()
	var events []Event
	for _, m := range []struct{ id, msg string }{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"b", "2"}} {
		events = append(events, Event{Reason: ReasonPaused, Release: Release{ID: m.id}, Message: m.msg, At: t0})
	}
	if _, err := st.Update(func(tx *store.Tx) error { return announce(tx, events) }); err != nil {
		t.Fatal(err)
	}
	next, err := e.Deliver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Second); !next.Equal(want) {
		t.Errorf("next retry at %s, want %s", next, want)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if _, err := e.Deliver(context.Background()); err != nil { // not due yet
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, err := e.Deliver(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(heard, ", "), "b 1, b 2, a 1, a 2"; got != want {
		t.Errorf("chat heard %s, want %s", got, want)
	}
}

// An event no listener will take is given up after deliveryAttempts, and
// the history says so.
func TestOutboxGivesUp(t *testing.T) {
	clock := fakeclock.New(t0)
	broken := NotifierFunc(func(context.Context, Event) error { return errors.New("channel_not_found") })
	st, e := outboxEngine(t, filepath.Join(t.TempDir(), "shipbot.db"), clock, Audience{{"slack", broken}}, nil)
	defer st.Close()
	id := pendingRelease(t, st)
	if err := announceNow(e, Event{Reason: ReasonPaused, Release: Release{ID: id}, At: t0}); err != nil {
		t.Fatal(err)
	}
	for range deliveryAttempts {
		clock.Advance(maxBackoff)
		if _, err := e.Deliver(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if left, err := st.Outbox(10); err != nil || len(left) != 0 {
		t.Errorf("outbox holds %v (%v), want nothing", left, err)
	}
	h := mustGet(t, e, id).History
	if n := len(h); n != deliveryAttempts || h[n-1].Message != "Paused announced to no one; failed: slack (channel_not_found) (attempt 12 of 12); gave up" {
		t.Errorf("history %d entries, last %+v", n, h[len(h)-1])
	}
}

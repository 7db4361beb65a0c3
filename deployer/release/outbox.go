package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// outboxKind marks the outbox entries that hold release events.
const outboxKind = "release"

// Delivery of the outbox: an entry some listener failed to take is tried
// again after 1s, 2s, 4s… (at most maxBackoff apart), up to deliveryAttempts
// times, about 18 minutes in all, so that a chat or GitLab outage of a few
// minutes loses nothing; then it is given up (the release's history says
// so). Until then the release's later events
// wait behind it, so each listener hears a release's events in order.
const (
	deliveryAttempts = 12
	maxBackoff       = 5 * time.Minute
	outboxBatch      = 256
)

// announce puts events in the outbox within tx, the transaction that saves
// the change they announce. Each gets the outbox entry's id as its ID.
func announce(tx *store.Tx, events []Event) error {
	for _, ev := range events {
		_, err := tx.Announce(outboxKind, ev.At, func(id string) ([]byte, error) {
			ev.ID = id
			return json.Marshal(ev)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Deliver hands the outbox's release events to the notifier, oldest first,
// and removes each once every listener has taken it. Delivery is at least
// once: a crash after a listener took an event and before that was saved
// tells that listener again, with the same Event.ID. It returns when the
// outbox holds nothing it may send now, and the time of the next retry
// due, zero when none is.
func (e *Stepper) Deliver(ctx context.Context) (time.Time, error) {
	e.outbox.Lock()
	defer e.outbox.Unlock()
	for {
		sent, next, err := e.deliverBatch(ctx)
		if err != nil || sent == 0 {
			return next, err
		}
	}
}

// deliverBatch delivers what it may of one batch of the outbox and says
// how many entries it settled.
func (e *Stepper) deliverBatch(ctx context.Context) (settled int, next time.Time, err error) {
	entries, err := e.store.Outbox(outboxBatch)
	if err != nil {
		return 0, time.Time{}, err
	}
	waiting := map[string]bool{} // releases with an event in backoff
	for _, o := range entries {
		if err := ctx.Err(); err != nil {
			return settled, next, err
		}
		if o.Kind != outboxKind {
			continue // another engine's
		}
		var ev Event
		if err := json.Unmarshal(o.Body, &ev); err != nil {
			return settled, next, fmt.Errorf("outbox %s: %w", o.ID, err)
		}
		if waiting[ev.Release.ID] {
			continue
		}
		if now := e.clock.Now(); now.Before(o.Next) {
			waiting[ev.Release.ID] = true
			if next.IsZero() || o.Next.Before(next) {
				next = o.Next
			}
			continue
		}
		done, retry, err := e.deliverOne(ctx, o, ev)
		if err != nil {
			return settled, next, err
		}
		if done {
			settled++
			continue
		}
		waiting[ev.Release.ID] = true
		if next.IsZero() || retry.Before(next) {
			next = retry
		}
	}
	return settled, next, nil
}

// deliverOne hands one event to the listeners that have not taken it yet,
// then, in one transaction, notes in the release's history who took it and
// removes it or records when to try again.
func (e *Stepper) deliverOne(ctx context.Context, o store.Outgoing, ev Event) (done bool, retry time.Time, err error) {
	ev.ID = o.ID
	msg, took, failed := e.hand(ctx, ev, o.Took)
	if ctx.Err() != nil {
		return false, time.Time{}, ctx.Err() // stopped, not refused: try again next time
	}
	o.Took, o.Attempts = append(o.Took, took...), o.Attempts+1
	done = failed == nil || o.Attempts >= deliveryAttempts
	if failed != nil {
		e.log.Warn("notify release event", "release", ev.Release.ID, "reason", ev.Reason, "event", o.ID, "attempt", o.Attempts, "err", failed)
	}
	if msg != "" && (failed != nil || o.Attempts > 1) {
		msg += fmt.Sprintf(" (attempt %d of %d)", o.Attempts, deliveryAttempts)
		if failed != nil && done {
			msg += "; gave up"
		}
	}
	if !done {
		o.Next = e.clock.Now().Add(min(time.Second<<(o.Attempts-1), maxBackoff))
	}
	_, err = e.store.Update(func(tx *store.Tx) error {
		if msg != "" && ev.Release.ID != "" {
			if err := e.noteNotified(tx, ev, msg); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if done {
			return tx.Delivered(o.Seq)
		}
		return tx.PutOutgoing(o)
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("outbox %s: %w", o.ID, err)
	}
	return done, o.Next, nil
}

// hand gives ev to the listeners not in took. An Audience says what became
// of it for the release's history; any other notifier is only called.
func (e *Stepper) hand(ctx context.Context, ev Event, took []string) (msg string, now []string, err error) {
	a, ok := e.notifier.(Audience)
	if !ok {
		if len(took) > 0 {
			return "", nil, nil
		}
		if err := e.notifier.Notify(ctx, ev); err != nil && !errors.Is(err, ErrUnchanged) {
			return "", nil, err
		}
		return "", []string{""}, nil
	}
	if len(a) == 0 {
		return "", nil, nil
	}
	return a.announceTo(ctx, ev, took)
}

// noteNotified appends what became of an event's notifications to its
// release's history, within tx.
func (e *Stepper) noteNotified(tx *store.Tx, ev Event, msg string) error {
	at := ev.At
	if at.IsZero() {
		at = e.clock.Now()
	}
	return tx.UpdateRelease(ev.Release.ID, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		r.History = append(r.History, Entry{At: at, Actor: EngineActor, Kind: EntryNotified, Phase: r.Phase, Stage: r.Stage, Message: msg})
		return json.Marshal(r)
	})
}

// keys names each listener for an outbox entry's Took: its name, and for a
// second listener of the same name, name#2, and so on.
func (a Audience) keys() []string {
	seen := map[string]int{}
	out := make([]string, len(a))
	for i, l := range a {
		seen[l.Name]++
		out[i] = l.Name
		if n := seen[l.Name]; n > 1 {
			out[i] += "#" + strconv.Itoa(n)
		}
	}
	return out
}

// RunOutbox delivers the outbox until ctx ends: at once, which sends what
// a crash left undelivered, then whenever a save adds to it and when a
// retry is due. The Scheduler runs it.
func (e *Stepper) RunOutbox(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.store.Announced():
		}
		next, err := e.Deliver(ctx)
		wait := e.poll * 30 // in case a signal was missed
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			e.log.Error("deliver release events", "err", err)
			wait = e.poll
		case !next.IsZero():
			wait = min(wait, max(next.Sub(e.clock.Now()), 10*time.Millisecond))
		}
		timer.Reset(wait)
	}
}

package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// ReasonStillPaused re-announces a release that has waited for a person for
// longer than the reminder schedule allows.
const ReasonStillPaused Reason = "StillPaused"

// EntryReminder is the kind of history entry for a reminder that a paused
// release is still waiting. Like refusals, reminders are audit lines only.
const EntryReminder EntryKind = "reminder"

// Reminders says when a paused release is announced again: After the pause
// began, then every Every.
type Reminders struct {
	After time.Duration
	Every time.Duration
}

// pausedSince is when r last entered Paused, from its history; zero when it
// is not paused.
func (r Release) pausedSince() time.Time {
	if r.Phase != Paused {
		return time.Time{}
	}
	for i := len(r.History) - 1; i >= 0; i-- {
		if e := r.History[i]; e.Kind == EntryTransition && e.Phase == Paused {
			return e.At
		}
	}
	return r.Updated
}

// remindersSince counts the reminders in r's history after t.
func (r Release) remindersSince(t time.Time) int {
	n := 0
	for _, e := range r.History {
		if e.Kind == EntryReminder && !e.At.Before(t) {
			n++
		}
	}
	return n
}

// due reports whether r is owed a reminder at now, and when the next one is
// due otherwise. Reminders already sent are counted from the history, so a
// restart neither repeats nor skips one.
func (s Reminders) due(r Release, now time.Time) (bool, time.Time) {
	since := r.pausedSince()
	if since.IsZero() || s.After <= 0 {
		return false, time.Time{}
	}
	next := since.Add(s.After)
	if sent := r.remindersSince(since); sent > 0 {
		if s.Every <= 0 {
			return false, time.Time{}
		}
		next = next.Add(time.Duration(sent) * s.Every)
	}
	return !now.Before(next), next
}

// Remind announces, once per slot of s, each paused release that has waited
// past it: it appends a reminder to the release's history and puts a
// StillPaused event in the outbox in one transaction, then delivers the
// outbox. It returns the time of the next reminder due, zero when none is.
func (e *Stepper) Remind(ctx context.Context, s Reminders) (time.Time, error) {
	active, err := e.Active(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	var errs []error
	reminded := false
	for _, r := range active {
		now := e.clock.Now()
		ok, at := s.due(r, now)
		if !ok {
			if !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
			continue
		}
		var out Release
		_, err := e.store.Update(func(tx *store.Tx) error {
			err := tx.UpdateRelease(r.ID, func(stored []byte) ([]byte, error) {
				cur, err := e.decode(stored)
				if err != nil {
					return nil, err
				}
				if ok, _ := s.due(cur, now); !ok {
					return nil, errNotDue // it moved on, or another call reminded
				}
				waited := now.Sub(cur.pausedSince()).Round(time.Minute)
				cur.History = append(cur.History, Entry{At: now, Actor: EngineActor, Kind: EntryReminder, Phase: cur.Phase, Stage: cur.Stage,
					Message: fmt.Sprintf("still paused after %s; reminded", waited)})
				out = cur
				msg := fmt.Sprintf("waiting for a person for %s", waited)
				e.log.Info("release "+string(ReasonStillPaused), "release", cur.ID, "app", cur.App, "env", cur.Environment, "waited", waited)
				out.announce = []Event{{Reason: ReasonStillPaused, Release: cur.snapshot(), Summary: Describe(cur, now), Message: msg, At: now}}
				return json.Marshal(cur)
			})
			if err != nil {
				return err
			}
			return announce(tx, out.announce)
		})
		switch {
		case errors.Is(err, errNotDue):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("remind release %s: %w", r.ID, err))
			continue
		}
		reminded = true
		if _, at := s.due(out, now); !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if reminded {
		if _, err := e.Deliver(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("deliver release events", "err", err)
		}
	}
	return next, errors.Join(errs...)
}

var errNotDue = errors.New("reminder not due")

// RunReminders calls Remind until ctx ends: when the next reminder is due,
// and at least every check so that new pauses are seen.
func (e *Stepper) RunReminders(ctx context.Context, s Reminders, check time.Duration) {
	if s.After <= 0 {
		return
	}
	e.every(ctx, check, "release reminders", func(ctx context.Context) (time.Time, error) { return e.Remind(ctx, s) })
}

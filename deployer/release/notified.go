package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EntryNotified is the kind of history entry that says which surfaces an
// event was handed to, and which failed to take it.
const EntryNotified EntryKind = "notified"

// ErrUnchanged is what a notifier returns when it had nothing new to say
// about an event, such as a commit status already in the state the event
// maps to. It is not a failure: the release's history says "unchanged".
var ErrUnchanged = errors.New("nothing changed")

// Listener is a notifier and the name it goes by in a release's history.
type Listener struct {
	Name string
	Notifier
}

// Audience is everyone told about a release's events. Given as the
// Stepper's Notifier, each event goes to every listener, and the Stepper
// notes in the release's history which took it, which had nothing new and
// which failed, so the audit shows who was told what. One failing listener
// does not keep the event from the others.
type Audience []Listener

// Notify hands e to every listener and joins their failures.
func (a Audience) Notify(ctx context.Context, e Event) error {
	_, err := a.announce(ctx, e)
	return err
}

// maxNotifyError keeps one failure's text in the history short, in runes.
const maxNotifyError = 200

// announce hands e to every listener and says what became of it, as the
// history puts it.
func (a Audience) announce(ctx context.Context, e Event) (string, error) {
	var sent, unchanged, failed []string
	var errs []error
	for _, l := range a {
		err := l.Notify(ctx, e)
		switch {
		case err == nil:
			sent = append(sent, l.Name)
		case errors.Is(err, ErrUnchanged):
			unchanged = append(unchanged, l.Name)
		default:
			errs = append(errs, err)
			text := err.Error()
			if r := []rune(text); len(r) > maxNotifyError {
				text = string(r[:maxNotifyError]) + "…"
			}
			failed = append(failed, l.Name+" ("+text+")")
		}
	}
	msg := fmt.Sprintf("%s announced to %s", e.Reason, strings.Join(sent, ", "))
	if len(sent) == 0 {
		msg = fmt.Sprintf("%s announced to no one", e.Reason)
	}
	if len(unchanged) > 0 {
		msg += "; unchanged: " + strings.Join(unchanged, ", ")
	}
	if len(failed) > 0 {
		msg += "; failed: " + strings.Join(failed, "; ")
	}
	return msg, errors.Join(errs...)
}

// notify hands ev to the notifier. An Audience's outcome is appended to the
// release's history; any other notifier is only called.
func (e *Stepper) notify(ctx context.Context, ev Event) error {
	a, ok := e.notifier.(Audience)
	if !ok {
		return e.notifier.Notify(ctx, ev)
	}
	if len(a) == 0 {
		return nil
	}
	msg, err := a.announce(ctx, ev)
	if ev.Release.ID == "" {
		return err
	}
	if nerr := e.notified(ctx, ev.Release.ID, ev.At, msg); nerr != nil {
		err = errors.Join(err, fmt.Errorf("note notifications of release %s: %w", ev.Release.ID, nerr))
	}
	return err
}

// notified appends what became of an event's notifications to release
// id's history, in one transaction; a step running meanwhile keeps it.
func (e *Stepper) notified(ctx context.Context, id string, at time.Time, msg string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.IsZero() {
		at = e.clock.Now()
	}
	return e.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		r.History = append(r.History, Entry{At: at, Actor: EngineActor, Kind: EntryNotified, Phase: r.Phase, Stage: r.Stage, Message: msg})
		return json.Marshal(r)
	})
}

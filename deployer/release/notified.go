package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// does not keep the event from the others; it is tried again (outbox.go).
type Audience []Listener

// Notify hands e to every listener and joins their failures.
func (a Audience) Notify(ctx context.Context, e Event) error {
	_, _, err := a.announceTo(ctx, e, nil)
	return err
}

// maxNotifyError keeps one failure's text in the history short, in runes.
const maxNotifyError = 200

// announceTo hands e to every listener whose key (Audience.keys) is not in
// took, and says what became of it, as the history puts it, and which
// listeners took it now (those with nothing new among them).
func (a Audience) announceTo(ctx context.Context, e Event, took []string) (string, []string, error) {
	var sent, unchanged, failed, now []string
	var errs []error
	for i, key := range a.keys() {
		if slices.Contains(took, key) {
			continue
		}
		l := a[i]
		err := l.Notify(ctx, e)
		switch {
		case err == nil:
			sent = append(sent, l.Name)
			now = append(now, key)
		case errors.Is(err, ErrUnchanged):
			unchanged = append(unchanged, l.Name)
			now = append(now, key)
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
	return msg, now, errors.Join(errs...)
}

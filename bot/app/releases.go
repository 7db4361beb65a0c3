package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
)

// namedNotifier is a release notifier and the name it goes by in a
// release's history.
type namedNotifier struct {
	name string
	release.Notifier
}

// announcer hands each release event to every notifier and notes in the
// release's history which took it and which failed, so that the audit shows
// who was told what. One failing notifier does not keep the event from the
// others; the engine logs the joined error.
type announcer struct {
	notifiers []namedNotifier
	// note records the outcome in the release's history; set once the
	// engine exists.
	note func(ctx context.Context, id string, at time.Time, msg string) error
}

// maxNotifyError keeps one failure's text in the history short, in runes.
const maxNotifyError = 200

func (a *announcer) Notify(ctx context.Context, e release.Event) error {
	if len(a.notifiers) == 0 {
		return nil
	}
	var sent, unchanged, failed []string
	var errs []error
	for _, n := range a.notifiers {
		err := n.Notify(ctx, e)
		if err == nil {
			sent = append(sent, n.name)
			continue
		}
		if errors.Is(err, notify.ErrUnchanged) {
			unchanged = append(unchanged, n.name)
			continue
		}
		errs = append(errs, err)
		text := err.Error()
		if r := []rune(text); len(r) > maxNotifyError {
			text = string(r[:maxNotifyError]) + "…"
		}
		failed = append(failed, n.name+" ("+text+")")
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
	if a.note != nil && e.Release.ID != "" {
		if err := a.note(ctx, e.Release.ID, e.At, msg); err != nil {
			errs = append(errs, fmt.Errorf("note notifications of release %s: %w", e.Release.ID, err))
		}
	}
	return errors.Join(errs...)
}

// deployFanout hands each deploy event to every notifier; nil
// when there is no one to tell.
func deployFanout(ns []deployer.Notifier) deployer.Notifier {
	if len(ns) == 0 {
		return nil
	}
	if len(ns) == 1 {
		return ns[0]
	}
	return deployer.NotifierFunc(func(ctx context.Context, e deployer.Event) error {
		var errs []error
		for _, n := range ns {
			if err := n.Notify(ctx, e); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

func clock(now func() time.Time) release.Clock { return clockFunc(now) }

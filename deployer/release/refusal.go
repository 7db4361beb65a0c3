package release

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// EntryRefusal is the kind of history entry for an intent a surface refused
// to record because its actor may not ask for it. Refusals are audit lines
// only: they are never intents, so the engine has nothing to act on.
const EntryRefusal EntryKind = "refusal"

// maxRefusals bounds the refusals one release keeps, so that someone who
// repeats a command they may not give cannot grow the release without end.
// Past it, refusals are only logged by the surface that refused them.
const maxRefusals = 100

// Refusal is an intent that was refused before it was recorded: who asked,
// from where, for what, and why they were told no.
type Refusal struct {
	Intent Intent // what was asked (Kind, Percent), by whom (Actor, a GitLab username) and from where (Surface); At defaults to now
	ChatID string // the actor's id on the surface, e.g. a Slack user id; empty on GitLab's own surfaces
	Reason string // why, in the words the actor was shown
}

func (f Refusal) validate() error {
	in := f.Intent
	switch {
	case strings.TrimSpace(in.Actor) == "" && strings.TrimSpace(f.ChatID) == "":
		return fmt.Errorf("%w: a refusal names no actor", ErrInvalid)
	case !slices.Contains(surfaces, in.Surface):
		return fmt.Errorf("%w: unknown surface %q", ErrInvalid, in.Surface)
	case strings.TrimSpace(f.Reason) == "":
		return fmt.Errorf("%w: a refusal gives no reason", ErrInvalid)
	case in.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalid)
	}
	return nil
}

// Refuse appends f to the history. It changes nothing else: a refused
// intent never reaches Intents. Any release takes refusals, ended ones too.
func (r *Release) Refuse(f Refusal) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("refusal of %s: %w", f.Intent, err)
	}
	if r.refusals() >= maxRefusals {
		return nil
	}
	r.History = append(r.History, Entry{
		At: f.Intent.At, Actor: f.Intent.Actor, ChatID: f.ChatID, Surface: f.Intent.Surface, Kind: EntryRefusal,
		Phase: r.Phase, Stage: r.Stage, Message: f.Intent.String() + " refused: " + f.Reason,
	})
	return nil
}

func (r *Release) refusals() int {
	n := 0
	for _, e := range r.History {
		if e.Kind == EntryRefusal {
			n++
		}
	}
	return n
}

// auditOnly are the history kinds written outside a step, straight into the
// store: they change nothing the engine acts on, so a step that was running
// meanwhile keeps them when it saves. A new kind of such entry goes here.
var auditOnly = []EntryKind{EntryRefusal, EntryReminder, EntryRetired, EntryNotified, EntryApproval, EntryRetry}

// mergeRefusals appends the audit-only entries in stored that r lacks, so
// that saving r never loses one recorded while a step was running.
func (r *Release) mergeRefusals(stored []Entry) {
	for _, e := range stored {
		if slices.Contains(auditOnly, e.Kind) && !slices.ContainsFunc(r.History, e.same) {
			r.History = append(r.History, e)
		}
	}
}

// same reports whether two entries record the same thing; times compare
// with Equal, as a decoded time may carry another *Location.
func (e Entry) same(o Entry) bool {
	at := e.At
	e.At = o.At
	return e == o && at.Equal(o.At)
}

// Refused keeps a refused intent in release id's audit history, in one
// transaction. Surfaces call it when their authorization check says no.
func (e *Stepper) Refused(ctx context.Context, id string, f Refusal) (Release, error) {
	if err := ctx.Err(); err != nil {
		return Release{}, err
	}
	if f.Intent.At.IsZero() {
		f.Intent.At = e.clock.Now()
	}
	var out Release
	err := e.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		if err := r.Refuse(f); err != nil {
			return nil, err
		}
		out = r
		return json.Marshal(r)
	})
	return out, err
}

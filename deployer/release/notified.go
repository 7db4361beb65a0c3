package release

import (
	"context"
	"encoding/json"
	"time"
)

// EntryNotified is the kind of history entry that says which surfaces an
// event was handed to, and which failed to take it.
const EntryNotified EntryKind = "notified"

// Notified appends what became of an event's notifications to release
// id's history, in one transaction; a step running meanwhile keeps it.
func (e *Stepper) Notified(ctx context.Context, id string, at time.Time, msg string) error {
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

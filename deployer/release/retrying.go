package release

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// EntryRetry is the kind of history entry that says a step failed and is
// tried again, and why: the release waits for, say, an apiserver that is
// down, and has not failed.
const EntryRetry EntryKind = "retry"

// maxRetryError keeps a failed step's error in the history short enough to
// read, and long enough to keep the cause at the end of a wrapped chain.
const maxRetryError = 400

// noteRetry notes in release id's history that a step failed with err and
// is tried again after wait. A failure that repeats the one noted last is
// not noted again, so an outage adds one entry per cause, not one per try.
func (e *Stepper) noteRetry(id string, err error, wait time.Duration) error {
	text := err.Error()
	if r := []rune(text); len(r) > maxRetryError {
		text = string(r[:maxRetryError]) + "…"
	}
	msg := fmt.Sprintf("step failed; trying again in %s: %s", wait, text)
	return e.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		if last, ok := r.lastRetry(); ok && last.Message == msg {
			return stored, nil
		}
		r.History = append(r.History, Entry{At: e.clock.Now(), Actor: EngineActor, Kind: EntryRetry, Phase: r.Phase, Stage: r.Stage, Message: msg})
		return json.Marshal(r)
	})
}

// lastRetry is the retry entry that follows every step's own entries, if
// any: only other audit-only entries, such as notifications, may come
// after it.
func (r *Release) lastRetry() (Entry, bool) {
	for _, e := range slices.Backward(r.History) {
		switch {
		case e.Kind == EntryRetry:
			return e, true
		case !slices.Contains(auditOnly, e.Kind):
			return Entry{}, false
		}
	}
	return Entry{}, false
}

package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketOutbox holds announcements not yet handed to whoever hears them,
// oldest first. An engine writes one in the transaction of the state change
// it announces, so a crash loses neither and a failed save sends nothing.
var bucketOutbox = []byte("outbox")

// Outgoing is one announcement in the outbox. The store does not interpret
// Body: the engine that wrote it reads it back.
type Outgoing struct {
	Seq  uint64          `json:"-"`
	ID   string          `json:"id"`   // stable across retries and restarts, for sinks that drop repeats
	Kind string          `json:"kind"` // which engine wrote it, e.g. "release"
	Body json.RawMessage `json:"body"`
	At   time.Time       `json:"at"`
	// Took names the listeners that have taken it, so that a retry goes
	// only to the others.
	Took     []string  `json:"took,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"` // not before, after a failed attempt
}

// FormatOutgoingID renders an outbox sequence number as an announcement id.
func FormatOutgoingID(seq uint64) string { return fmt.Sprintf("e%012d", seq) }

// Announce adds an announcement to the outbox, committed with the rest of
// the transaction; build receives its id and returns the body.
func (t *Tx) Announce(kind string, at time.Time, build func(id string) ([]byte, error)) (string, error) {
	b := t.tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return "", fmt.Errorf("announce: %w", err)
	}
	o := Outgoing{ID: FormatOutgoingID(seq), Kind: kind, At: at}
	if o.Body, err = build(o.ID); err != nil {
		return "", fmt.Errorf("announce: %w", err)
	}
	if err := put(b, itob(seq), o); err != nil {
		return "", fmt.Errorf("announce: %w", err)
	}
	t.announced = true
	return o.ID, nil
}

// Outbox returns up to limit announcements, oldest first.
func (s *Store) Outbox(limit int) ([]Outgoing, error) {
	var out []Outgoing
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var o Outgoing
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("outbox item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			o.Seq = binary.BigEndian.Uint64(k)
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// PutOutgoing records progress on an announcement still owed to someone.
func (t *Tx) PutOutgoing(o Outgoing) error {
	b := t.tx.Bucket(bucketOutbox)
	if b.Get(itob(o.Seq)) == nil {
		return fmt.Errorf("outbox item %d: %w", o.Seq, ErrNotFound)
	}
	return put(b, itob(o.Seq), o)
}

// Delivered removes an announcement everyone has taken.
func (t *Tx) Delivered(seq uint64) error {
	return t.tx.Bucket(bucketOutbox).Delete(itob(seq))
}

// Announced is signalled after a transaction that added to the outbox
// commits, so that a dispatcher delivers it without polling.
func (s *Store) Announced() <-chan struct{} { return s.announced }

func (s *Store) signalAnnounced() {
	select {
	case s.announced <- struct{}{}:
	default: // a signal is already pending
	}
}

package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery is one webhook as received, kept raw so it can be processed again
// after a restart exactly as it arrived.
type Delivery struct {
	Seq        uint64    `json:"seq"`
	Key        string    `json:"key"` // Idempotency-Key, X-Gitlab-Event-UUID or a body hash
	Event      string    `json:"event"`
	Body       []byte    `json:"body"`
	ReceivedAt time.Time `json:"receivedAt"`
}

type keyRecord struct {
	Seq        uint64    `json:"seq"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Accept stores a delivery in the inbox unless one with the same key was
// stored before, in which case it returns the earlier one and dup=true.
// It returns once the delivery is durably committed. A lone call commits at
// once; calls that arrive while a commit is in progress share the next one,
// so many senders share one fsync.
func (s *Store) Accept(ctx context.Context, d Delivery) (stored Delivery, dup bool, err error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, false, err
	}
	err = s.inbox.write(ctx, func(tx *wtx) error {
		dup = false
		keys := tx.Bucket(bucketKeys)
		if raw := keys.Get([]byte(d.Key)); raw != nil {
			var k keyRecord
			if err := json.Unmarshal(raw, &k); err != nil {
				return err
			}
			stored, dup = Delivery{Seq: k.Seq, Key: d.Key, Event: d.Event, ReceivedAt: k.ReceivedAt}, true
			return nil
		}
		inbox := tx.Bucket(bucketInbox)
		seq, err := inbox.NextSequence()
		if err != nil {
			return err
		}
		stored = d
		stored.Seq = seq
		if err := put(keys, []byte(d.Key), keyRecord{Seq: seq, ReceivedAt: d.ReceivedAt}); err != nil {
			return err
		}
		return put(inbox, itob(seq), stored)
	})
	if err != nil {
		return Delivery{}, false, fmt.Errorf("store delivery %s: %w", d.Key, err)
	}
	if !dup {
		s.depth.Add(1)
	}
	return stored, dup, nil
}

// Pending returns up to limit unprocessed deliveries, oldest first.
func (s *Store) Pending(limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("inbox item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Complete removes a delivery from the inbox and, in the same transaction,
// applies the changes it asks for. A crash leaves either the delivery pending
// (it is processed again) or all of its changes, never a part.
func (s *Store) Complete(seq uint64, changes func(*Tx) error) ([]Deployment, error) {
	var added []Deployment
	announced := false
	err := s.update(func(btx *wtx) error {
		inbox := btx.Bucket(bucketInbox)
		if inbox.Get(itob(seq)) == nil {
			return fmt.Errorf("inbox item %d: %w", seq, ErrNotFound)
		}
		if err := inbox.Delete(itob(seq)); err != nil {
			return err
		}
		tx := &Tx{tx: btx}
		if changes != nil {
			if err := changes(tx); err != nil {
				return err
			}
		}
		added, announced = tx.added, tx.announced
		return nil
	})
	if err != nil {
		return nil, err
	}
	if announced {
		s.signalAnnounced()
	}
	s.depth.Add(-1)
	return added, nil
}

// InboxDepth is the number of deliveries acknowledged but not yet processed.
func (s *Store) InboxDepth() int64 { return s.depth.Load() }

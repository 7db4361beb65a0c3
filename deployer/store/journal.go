package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Journal keeps, outside the bbolt file, the changes of every write
// transaction, so that another process can rebuild the store from them
// (see docs/ARCHITECTURE.md, "More than one replica"). Record is called
// inside the transaction, before it commits: if it fails, the
// transaction is rolled back, so the file never holds what the journal
// lacks.
type Journal interface {
	Record(ctx context.Context, writes []Write) error
}

// journalTimeout bounds one Record call; the store's callers pass no
// context of their own.
const journalTimeout = 10 * time.Second

// Write is one change to a bucket: a key set to Value, a key deleted, or
// the bucket's sequence set.
type Write struct {
	Bucket  string `json:"bucket"`
	Key     []byte `json:"key,omitempty"`
	Value   []byte `json:"value,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
	// Sequence, when set, is the bucket's new sequence (Key is nil).
	Sequence uint64 `json:"sequence,omitempty"`
}

func (w Write) String() string {
	switch {
	case w.Key == nil:
		return fmt.Sprintf("%s: sequence %d", w.Bucket, w.Sequence)
	case w.Deleted:
		return fmt.Sprintf("%s: delete %q", w.Bucket, w.Key)
	}
	return fmt.Sprintf("%s: put %q (%d bytes)", w.Bucket, w.Key, len(w.Value))
}

// wtx is a write transaction that notes what it changes.
type wtx struct {
	*bolt.Tx
	writes *[]Write
}

// Bucket is the named bucket, noting what is written to it.
func (t *wtx) Bucket(name []byte) *wbucket {
	return &wbucket{Bucket: t.Tx.Bucket(name), name: string(name), writes: t.writes}
}

// wbucket is a bucket whose Put, Delete and NextSequence are noted. Its
// cursors must not delete: collect the keys, then Delete them.
type wbucket struct {
	*bolt.Bucket
	name   string
	writes *[]Write
}

// Put writes and notes value, unless the bucket holds those bytes already:
// a transaction that changes nothing costs the journal nothing.
func (b *wbucket) Put(key, value []byte) error {
	if old := b.Bucket.Get(key); old != nil && bytes.Equal(old, value) {
		return nil
	}
	if err := b.Bucket.Put(key, value); err != nil {
		return err
	}
	*b.writes = append(*b.writes, Write{Bucket: b.name, Key: bytes.Clone(key), Value: bytes.Clone(value)})
	return nil
}

// Delete deletes and notes key, unless the bucket does not hold it. A
// cursor tells, where Get would not: Get answers nil for a key put with a
// nil value.
func (b *wbucket) Delete(key []byte) error {
	if k, _ := b.Bucket.Cursor().Seek(key); !bytes.Equal(k, key) {
		return nil
	}
	if err := b.Bucket.Delete(key); err != nil {
		return err
	}
	*b.writes = append(*b.writes, Write{Bucket: b.name, Key: bytes.Clone(key), Deleted: true})
	return nil
}

func (b *wbucket) NextSequence() (uint64, error) {
	n, err := b.Bucket.NextSequence()
	if err != nil {
		return 0, err
	}
	*b.writes = append(*b.writes, Write{Bucket: b.name, Sequence: n})
	return n, nil
}

// update runs f in one write transaction and, when there is a journal,
// records what f wrote before committing.
func (s *Store) update(f func(*wtx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error { return s.inTx(btx, f) })
}

// inTx runs f on btx and records its writes in the journal.
func (s *Store) inTx(btx *bolt.Tx, f func(*wtx) error) error {
	var writes []Write
	if err := f(&wtx{Tx: btx, writes: &writes}); err != nil {
		return err
	}
	if s.journal == nil || len(writes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	if err := s.journal.Record(ctx, writes); err != nil {
		return fmt.Errorf("journal %d writes: %w", len(writes), err)
	}
	return nil
}

// Apply writes as they are, in one transaction that the journal does not
// see: to rebuild a store from a journal.
func (s *Store) Apply(writes []Write) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range writes {
			b := tx.Bucket([]byte(w.Bucket))
			if b == nil {
				return fmt.Errorf("apply %s: no such bucket", w)
			}
			var err error
			switch {
			case w.Key == nil:
				err = b.SetSequence(w.Sequence)
			case w.Deleted:
				err = b.Delete(w.Key)
			default:
				err = b.Put(w.Key, w.Value)
			}
			if err != nil {
				return fmt.Errorf("apply %s: %w", w, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.recount()
}

// recount sets the inbox depth from the file.
func (s *Store) recount() error {
	return s.db.View(func(tx *bolt.Tx) error {
		s.depth.Store(int64(tx.Bucket(bucketInbox).Stats().KeyN))
		return nil
	})
}

// Contents calls fn with every record and every bucket's sequence, as
// writes that Apply would turn an empty store into this one with.
func (s *Store) Contents(fn func(Write) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if seq := b.Sequence(); seq > 0 {
				if err := fn(Write{Bucket: string(name), Sequence: seq}); err != nil {
					return err
				}
			}
			return b.ForEach(func(k, v []byte) error {
				return fn(Write{Bucket: string(name), Key: bytes.Clone(k), Value: bytes.Clone(v)})
			})
		})
	})
}

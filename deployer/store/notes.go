package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketNotes holds small records that surfaces keep for themselves, under
// keys they namespace, e.g. "slack/msg/r000000000012" for the chat message
// of a release, or "dingtalk/used/<token id>" for a one-time link. The store
// does not interpret them.
var bucketNotes = []byte("notes")

// PutNote stores value under key, replacing what was there.
func (s *Store) PutNote(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("put note: empty key")
	}
	return s.update(func(tx *wtx) error {
		if err := stampNote(tx.Bucket(bucketNoteTimes), []byte(key), s.now()); err != nil {
			return err
		}
		return tx.Bucket(bucketNotes).Put([]byte(key), value)
	})
}

// Note reads the value under key; it wraps ErrNotFound when there is none.
func (s *Store) Note(key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNotes).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("note %s: %w", key, ErrNotFound)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// PutNoteOnce stores value under key unless the key exists, and reports
// whether it stored it. Two callers racing for one key: exactly one wins,
// which is what a link that works only once needs.
func (s *Store) PutNoteOnce(key string, value []byte) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("put note: empty key")
	}
	stored := false
	err := s.update(func(tx *wtx) error {
		b := tx.Bucket(bucketNotes)
		if b.Get([]byte(key)) != nil {
			return nil
		}
		stored = true
		if err := stampNote(tx.Bucket(bucketNoteTimes), []byte(key), s.now()); err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
	return stored, err
}

// DeleteNote removes key; a missing key is not an error.
func (s *Store) DeleteNote(key string) error {
	return s.update(func(tx *wtx) error {
		if err := tx.Bucket(bucketNoteTimes).Delete([]byte(key)); err != nil {
			return err
		}
		return tx.Bucket(bucketNotes).Delete([]byte(key))
	})
}

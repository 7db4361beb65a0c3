package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketLocks holds environment locks as JSON documents keyed by
// environment name. The release package owns their shape, as it does the
// releases'; the store only keeps them.
var bucketLocks = []byte("locks")

// UpdateLock replaces the lock document of env in one transaction: update
// gets the stored document, nil when there is none, and returns the new one;
// nil deletes it. An error from update changes nothing.
func (s *Store) UpdateLock(env string, update func(stored []byte) ([]byte, error)) error {
	if env == "" {
		return fmt.Errorf("update lock: empty environment")
	}
	return s.update(func(tx *wtx) error {
		b := tx.Bucket(bucketLocks)
		var stored []byte
		if raw := b.Get([]byte(env)); raw != nil {
			stored = append([]byte(nil), raw...)
		}
		doc, err := update(stored)
		switch {
		case err != nil:
			return err
		case doc == nil:
			return b.Delete([]byte(env))
		}
		return b.Put([]byte(env), doc)
	})
}

// Lock reads the lock document of env; nil when env is not locked.
func (s *Store) Lock(env string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketLocks).Get([]byte(env)); raw != nil {
			out = append([]byte(nil), raw...)
		}
		return nil
	})
	return out, err
}

// Locks calls fn with every lock document, by environment name.
func (s *Store) Locks(fn func(env string, doc []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLocks).ForEach(func(k, v []byte) error {
			return fn(string(k), append([]byte(nil), v...))
		})
	})
}

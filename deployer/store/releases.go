package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketReleases holds staged releases as JSON documents keyed by id. The
// release package owns their shape; the store only keeps them safe, so that
// store never imports release.
var bucketReleases = []byte("releases")

// FormatReleaseID renders a sequence number as a release id that sorts by time.
func FormatReleaseID(seq uint64) string { return fmt.Sprintf("r%012d", seq) }

// CreateRelease stores a new release document under the next release id;
// build receives that id and returns the document.
func (s *Store) CreateRelease(build func(id string) ([]byte, error)) (string, error) {
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		id = FormatReleaseID(seq)
		doc, err := build(id)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), doc)
	})
	if err != nil {
		return "", fmt.Errorf("create release: %w", err)
	}
	return id, nil
}

// Release reads one release document.
func (s *Store) Release(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketReleases).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("release %s: %w", id, ErrNotFound)
		}
		out = append([]byte(nil), raw...) // bbolt's slice dies with the transaction
		return nil
	})
	return out, err
}

// UpdateRelease replaces a release document in one transaction: update gets
// the stored document and returns the new one. Writers that read, merge and
// write inside update never lose each other's changes.
func (s *Store) UpdateRelease(id string, update func(stored []byte) ([]byte, error)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReleases)
		raw := b.Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("release %s: %w", id, ErrNotFound)
		}
		doc, err := update(append([]byte(nil), raw...))
		if err != nil {
			return err
		}
		return b.Put([]byte(id), doc)
	})
}

// Releases calls fn with every release document, oldest first.
func (s *Store) Releases(fn func(id string, doc []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReleases).ForEach(func(k, v []byte) error {
			return fn(string(k), append([]byte(nil), v...))
		})
	})
}

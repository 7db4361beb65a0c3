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
	err := s.update(func(tx *wtx) (err error) {
		id, err = createRelease(tx, build)
		return err
	})
	return id, err
}

// Release reads one release document.
func (s *Store) Release(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		out, err = readRelease(tx, id)
		return err
	})
	return out, err
}

// UpdateRelease replaces a release document in one transaction: update gets
// the stored document and returns the new one. Writers that read, merge and
// write inside update never lose each other's changes.
func (s *Store) UpdateRelease(id string, update func(stored []byte) ([]byte, error)) error {
	return s.update(func(tx *wtx) error { return updateRelease(tx, id, update) })
}

// Releases calls fn with every release document, oldest first.
func (s *Store) Releases(fn func(id string, doc []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return eachRelease(tx, fn) })
}

// CreateRelease is Store.CreateRelease inside the transaction.
func (t *Tx) CreateRelease(build func(id string) ([]byte, error)) (string, error) {
	return createRelease(t.tx, build)
}

// UpdateRelease is Store.UpdateRelease inside the transaction.
func (t *Tx) UpdateRelease(id string, update func(stored []byte) ([]byte, error)) error {
	return updateRelease(t.tx, id, update)
}

// Releases is Store.Releases inside the transaction.
func (t *Tx) Releases(fn func(id string, doc []byte) error) error { return eachRelease(t.tx.Tx, fn) }

func createRelease(tx *wtx, build func(id string) ([]byte, error)) (string, error) {
	b := tx.Bucket(bucketReleases)
	seq, err := b.NextSequence()
	if err != nil {
		return "", fmt.Errorf("create release: %w", err)
	}
	id := FormatReleaseID(seq)
	doc, err := build(id)
	if err != nil {
		return "", fmt.Errorf("create release: %w", err)
	}
	if err := b.Put([]byte(id), doc); err != nil {
		return "", fmt.Errorf("create release: %w", err)
	}
	return id, nil
}

func readRelease(tx *bolt.Tx, id string) ([]byte, error) {
	raw := tx.Bucket(bucketReleases).Get([]byte(id))
	if raw == nil {
		return nil, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	return append([]byte(nil), raw...), nil // bbolt's slice dies with the transaction
}

func updateRelease(tx *wtx, id string, update func(stored []byte) ([]byte, error)) error {
	raw, err := readRelease(tx.Tx, id)
	if err != nil {
		return err
	}
	doc, err := update(raw)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketReleases).Put([]byte(id), doc)
}

func eachRelease(tx *bolt.Tx, fn func(id string, doc []byte) error) error {
	return tx.Bucket(bucketReleases).ForEach(func(k, v []byte) error {
		return fn(string(k), append([]byte(nil), v...))
	})
}

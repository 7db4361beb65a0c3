// Package store keeps shipbot's state in one bbolt file: the webhook inbox,
// the delivery keys seen (for dedupe) and the deployment records.
//
// Statuses are stored as strings, never as iota numbers, so that reordering a
// constant can never reinterpret old data.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/shipbot/shipbot/deployer/errkind"
)

var (
	bucketInbox       = []byte("inbox")
	bucketKeys        = []byte("delivery-keys")
	bucketDeployments = []byte("deployments")
	bucketPreviews    = []byte("previews")
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errkind.New(errkind.NotFound, "not found")

// ErrUnavailable means the store cannot be reached now, e.g. the apiserver
// behind the cluster inbox is down; the same request may succeed later.
var ErrUnavailable = errors.New("store unavailable")

// ErrLocked means another process holds the store file; bbolt is single-writer.
var ErrLocked = errors.New("store is in use by another process")

// Store is the bbolt-backed state of one shipbot instance.
type Store struct {
	db    *bolt.DB
	now   func() time.Time
	inbox *committer
	depth atomic.Int64
	// announced is buffered: "the outbox may be non-empty".
	announced chan struct{}
	journal   Journal // nil: the file alone keeps the store
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; a second shipbot on the
	// same file fails after it instead of hanging.
	LockTimeout time.Duration
	// NoSync skips fsync; only for benchmarks that measure everything else.
	NoSync bool
	// Now is the clock notes are stamped with, and Open prunes by;
	// time.Now when nil.
	Now func() time.Time
	// Retention, when set, is pruned by as the store opens, before it
	// compacts.
	Retention *Retention
	// Compact rewrites the file as it opens when more than half of it is
	// free and it is larger than CompactMin: bbolt reuses freed pages but
	// never gives them back to the file system.
	Compact bool
	// Journal, when set, records every write transaction's changes
	// before it commits; see Journal.
	Journal Journal
}

// CompactMin is the size below which Open never compacts: the rewrite is
// not worth it.
const CompactMin = 1 << 20

// Open opens or creates the store file.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, now: opts.Now, announced: make(chan struct{}, 1), journal: opts.Journal}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: init: %w", path, err)
	}
	if err := s.tidy(opts); err != nil {
		if s.db != nil {
			s.db.Close()
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s.inbox = newCommitter(s)
	return s, nil
}

func openDB(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w (waited %s for its lock; run one shipbot per store file)", path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return db, nil
}

// init creates the buckets and counts the inbox.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketInbox, bucketKeys, bucketDeployments, bucketPreviews, bucketReleases, bucketNotes, bucketClaims, bucketLocks, bucketCommands, bucketOutbox, bucketNoteTimes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		s.depth.Store(int64(tx.Bucket(bucketInbox).Stats().KeyN))
		return nil
	})
}

// tidy prunes and compacts as Open was asked to.
func (s *Store) tidy(opts Options) error {
	if opts.Retention != nil {
		if _, err := s.Prune(s.now(), *opts.Retention); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	if !opts.Compact {
		return nil
	}
	return s.compact(opts)
}

// Close closes the file. Deliveries still waiting to be committed are
// refused with ErrClosed; one being committed finishes first.
func (s *Store) Close() error {
	s.inbox.close()
	return s.db.Close()
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.db.Path() }

// Ping checks that the store is open and readable.
func (s *Store) Ping() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInbox) == nil {
			return errors.New("store is not initialised")
		}
		return nil
	})
}

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func put(b interface{ Put(k, v []byte) error }, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

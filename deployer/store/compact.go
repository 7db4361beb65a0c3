package store

import (
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// compactTxSize bounds each transaction of a compaction's copy.
const compactTxSize = 64 << 20

// wasteful reports whether more than half of the file is free pages and it
// is larger than CompactMin.
func (s *Store) wasteful() (bool, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return false, err
	}
	st := s.db.Stats()
	return fi.Size() > CompactMin && int64(st.FreeAlloc)*2 > fi.Size(), nil
}

// compact rewrites the file without its free pages when it is wasteful:
// bbolt copies every bucket into a new file, which then replaces the old
// one. A crash before the rename leaves the old file, whole; the copy is
// made again at the next start.
func (s *Store) compact(opts Options) error {
	ok, err := s.wasteful()
	if err != nil || !ok {
		return err
	}
	path := s.db.Path()
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := bolt.Compact(dst, s.db, compactTxSize); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if s.db, err = openDB(path, opts); err != nil {
		s.db = nil
	}
	return err
}

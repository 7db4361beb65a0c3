package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned to a write that the store was closed before it could
// commit; nothing of that write was stored.
var ErrClosed = errors.New("store is closed")

// maxGroup bounds one group transaction, as bbolt's default MaxBatchSize does,
// so that a burst cannot build an unboundedly large commit.
const maxGroup = 1000

// committer is a group commit: one goroutine commits a write at once when it
// is idle, and every write that arrives while it commits (and fsyncs) joins
// the next transaction. bbolt's DB.Batch instead waits up to 10 ms for
// company, which a lone webhook pays in full.
type committer struct {
	db    *bolt.DB
	calls chan *call // unbuffered: a call is either taken by the loop or not sent
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// call is one caller's write. fn may run more than once, so it must reset
// whatever it reports back on each run.
type call struct {
	fn  func(*bolt.Tx) error
	err chan error // buffered, written once by the loop
}

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, calls: make(chan *call), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// write runs fn in a shared write transaction and returns once that
// transaction is committed, or with fn's own error, in which case nothing fn
// wrote is kept. A cancelled ctx stops the wait only before the write is
// handed over; after that the caller waits for the commit, so that a returned
// error always means "not stored".
func (c *committer) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	wc := &call{fn: fn, err: make(chan error, 1)}
	select {
	case c.calls <- wc:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return ErrClosed
	}
	err := <-wc.err
	var p panicked
	if errors.As(err, &p) {
		panic(p.v) // fn's panic belongs to its caller, not to the loop
	}
	return err
}

// close fails the writes still waiting with ErrClosed and returns after the
// commit in progress, if any, has finished.
func (c *committer) close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		var group []*call
		select {
		case wc := <-c.calls:
			group = append(group, wc)
		case <-c.stop:
			return
		}
		// Whoever queued up during the last commit goes into this one.
	gather:
		for len(group) < maxGroup {
			select {
			case wc := <-c.calls:
				group = append(group, wc)
			default:
				break gather
			}
		}
		c.commit(group)
	}
}

// commit runs the group's functions in one transaction. If one fails, the
// transaction is rolled back, the failing call is retried alone (its error,
// if any, is then its own, not an effect of the others) and the rest are
// committed again together, as DB.Batch does.
func (c *committer) commit(group []*call) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, wc := range group {
				if err := safely(wc.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, wc := range group {
				wc.err <- err
			}
			return
		}
		alone := group[failed]
		alone.err <- c.db.Update(func(tx *bolt.Tx) error { return safely(alone.fn, tx) })
		group = slices.Delete(group, failed, failed+1)
	}
}

// panicked carries a panic out of the loop to the caller whose fn raised it.
type panicked struct{ v any }

func (p panicked) Error() string { return fmt.Sprint("panic: ", p.v) }

func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicked{v}
		}
	}()
	return fn(tx)
}

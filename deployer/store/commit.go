package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
//
// Writes wait in a slice rather than in a channel send, so that a caller is
// woken once, by its result, and not also when the loop takes its write.
type committer struct {
	s    *Store
	wake chan struct{} // buffered: "the queue may be non-empty"
	done chan struct{}

	mu     sync.Mutex
	queue  []*call
	closed bool
}

// call is one caller's write. fn may run more than once, so it must reset
// whatever it reports back on each run.
type call struct {
	fn  func(*wtx) error
	err chan error // buffered, written once by the loop
}

func newCommitter(s *Store) *committer {
	c := &committer{s: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// write runs fn in a shared write transaction and returns once that
// transaction is committed, or with fn's own error, in which case nothing fn
// wrote is kept. ctx is checked only before the write is queued: after that
// the caller waits for the outcome, so that an error always means "not
// stored", as with DB.Batch.
func (c *committer) write(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wc := &call{fn: fn, err: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.queue = append(c.queue, wc)
	c.mu.Unlock()
	c.signal()
	err := <-wc.err
	var p panicked
	if errors.As(err, &p) {
		panic(p.v) // fn's panic belongs to its caller, not to the loop
	}
	return err
}

func (c *committer) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// close lets the commit in progress, if any, finish, refuses the writes still
// queued with ErrClosed, and returns once the loop has stopped.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	for range c.wake {
		// Whoever queued up during the last commit goes into the next one.
		for {
			group, closed := c.take()
			if closed {
				for _, wc := range group {
					wc.err <- ErrClosed
				}
				return
			}
			if len(group) == 0 {
				break
			}
			c.commit(group)
		}
	}
}

// take removes up to maxGroup queued writes, or all of them once closed.
func (c *committer) take() (group []*call, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.queue)
	if !c.closed {
		n = min(n, maxGroup)
	}
	group, c.queue = c.queue[:n:n], c.queue[n:]
	return group, c.closed
}

// commit runs the group's functions in one transaction. If one fails, the
// transaction is rolled back, the failing call is retried alone (its error,
// if any, is then its own, not an effect of the others) and the rest are
// committed again together, as DB.Batch does.
func (c *committer) commit(group []*call) {
	for len(group) > 0 {
		failed := -1
		err := c.s.update(func(tx *wtx) error {
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
		alone.err <- c.s.update(func(tx *wtx) error { return safely(alone.fn, tx) })
		group = slices.Delete(group, failed, failed+1)
	}
}

// panicked carries a panic out of the loop to the caller whose fn raised it.
type panicked struct{ v any }

func (p panicked) Error() string { return fmt.Sprint("panic: ", p.v) }

func safely(fn func(*wtx) error, tx *wtx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicked{v}
		}
	}()
	return fn(tx)
}

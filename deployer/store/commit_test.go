package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketTest = []byte("test")

// openTest opens a store with an extra bucket the tests write into directly.
func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s := open(t, path)
	err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketTest)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putting(key string) func(*wtx) error {
	return func(tx *wtx) error { return tx.Bucket(bucketTest).Put([]byte(key), []byte("v")) }
}

// stored lists which of keys are in the test bucket.
func stored(t *testing.T, s *Store, keys ...string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, k := range keys {
			got[k] = tx.Bucket(bucketTest).Get([]byte(k)) != nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// holdCommit starts a write that stays inside its transaction until release
// is closed, so that the writes started meanwhile queue for the next commit.
func holdCommit(t *testing.T, s *Store) (release chan struct{}, result chan error) {
	t.Helper()
	entered, release, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- s.inbox.write(context.Background(), func(tx *wtx) error {
			close(entered)
			<-release
			return putting("held")(tx)
		})
	}()
	<-entered
	return release, result
}

// queued is how many writes wait for the next commit.
func queued(s *Store) int {
	s.inbox.mu.Lock()
	defer s.inbox.mu.Unlock()
	return len(s.inbox.queue)
}

// closing is whether Close has begun.
func closing(s *Store) bool {
	s.inbox.mu.Lock()
	defer s.inbox.mu.Unlock()
	return s.inbox.closed
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
	}
}

func TestAcceptIsDurableForEveryConcurrentCaller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	const n = 200
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("k%03d", i)
			d, dup, err := s.Accept(context.Background(), Delivery{Key: key, Body: []byte(key)})
			if err != nil || dup {
				t.Errorf("accept %s: dup %v, %v", key, dup, err)
				return
			}
			seqs[i] = d.Seq
			// Committed means visible to a new reader as soon as Accept returns.
			err = s.db.View(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketInbox).Get(itob(d.Seq)) == nil {
					return fmt.Errorf("%s (seq %d) not committed when Accept returned", key, d.Seq)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	pending, err := s.Pending(n + 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != n || s.InboxDepth() != n {
		t.Fatalf("after reopen: %d pending, depth %d; want %d", len(pending), s.InboxDepth(), n)
	}
	bySeq := map[uint64]string{}
	for _, d := range pending {
		bySeq[d.Seq] = string(d.Body)
	}
	for i, seq := range seqs {
		if want := fmt.Sprintf("k%03d", i); bySeq[seq] != want {
			t.Errorf("seq %d holds %q after reopen, want %q", seq, bySeq[seq], want)
		}
	}
	// Every key is still known: a redelivery gets the original seq back.
	for i, seq := range seqs {
		d, dup, err := s.Accept(context.Background(), Delivery{Key: fmt.Sprintf("k%03d", i)})
		if err != nil || !dup || d.Seq != seq {
			t.Fatalf("redelivery of k%03d: seq %d dup %v err %v; want seq %d, dup", i, d.Seq, dup, err, seq)
		}
	}
}

func TestWritesArrivingDuringACommitShareTheNext(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	release, held := holdCommit(t, s)

	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	txs := map[int]bool{}
	for i := range n {
		wg.Go(func() {
			err := s.inbox.write(context.Background(), func(tx *wtx) error {
				mu.Lock()
				txs[tx.ID()] = true
				mu.Unlock()
				return putting(fmt.Sprint(i))(tx)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, func() bool { return queued(s) == n })
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(txs) != 1 {
		t.Errorf("%d writes queued behind one commit went into %d transactions, want 1", n, len(txs))
	}
}

func TestFailingWriteLosesNothingElseAndKeepsNothingOfItsOwn(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	c := &committer{s: s} // commit is driven by hand: one known group
	boom := errors.New("boom")
	fns := map[string]func(*wtx) error{
		"a": putting("a"),
		"half": func(tx *wtx) error {
			if err := putting("half")(tx); err != nil {
				return err
			}
			return boom // after a write that must not survive
		},
		"b": putting("b"),
		"panics": func(tx *wtx) error {
			if err := putting("panics")(tx); err != nil {
				return err
			}
			panic("bad input")
		},
		"c": putting("c"),
	}
	order := []string{"a", "half", "b", "panics", "c"}
	var group []*call
	for _, k := range order {
		group = append(group, &call{fn: fns[k], err: make(chan error, 1)})
	}
	c.commit(slices.Clone(group)) // commit reuses the slice it is given

	got := stored(t, s, order...)
	for i, k := range order {
		err := <-group[i].err
		var p panicked
		switch k {
		case "half":
			if !errors.Is(err, boom) || got[k] {
				t.Errorf("%s: err %v, stored %v; want boom and nothing stored", k, err, got[k])
			}
		case "panics":
			if !errors.As(err, &p) || p.v != "bad input" || got[k] {
				t.Errorf("%s: err %v, stored %v; want its panic and nothing stored", k, err, got[k])
			}
		default:
			if err != nil || !got[k] {
				t.Errorf("%s: err %v, stored %v; want committed", k, err, got[k])
			}
		}
	}
}

func TestAPanicReachesItsOwnCallerOnly(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	defer func() {
		if v := recover(); v != "bad input" {
			t.Fatalf("recovered %v, want the write's own panic", v)
		}
		// The loop survived: the next write commits.
		if err := s.inbox.write(context.Background(), putting("after")); err != nil || !stored(t, s, "after")["after"] {
			t.Fatalf("write after a panic: %v", err)
		}
	}()
	_ = s.inbox.write(context.Background(), func(*wtx) error { panic("bad input") })
}

func TestCloseRefusesQueuedWritesInsteadOfHanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openTest(t, path)
	release, held := holdCommit(t, s)

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := s.Accept(context.Background(), Delivery{Key: fmt.Sprint("queued", i)})
			errs <- err
		}()
	}
	waitFor(t, func() bool { return queued(s) == n })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, func() bool { return closing(s) })

	// The commit in progress finishes; the writes queued behind it are refused.
	close(release)
	if err := <-held; err != nil {
		t.Errorf("the write being committed when Close came: %v, want committed", err)
	}
	for i := range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("queued Accept during Close: %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d queued callers still waiting 5 s after Close", n-i, n)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Accept(context.Background(), Delivery{Key: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}

	s = openTest(t, path)
	defer s.Close()
	if !stored(t, s, "held")["held"] {
		t.Error("the write committed during Close is gone after reopen")
	}
	if p, _ := s.Pending(n + 1); len(p) != 0 {
		t.Errorf("%d refused deliveries were stored", len(p))
	}
}

// A key put with a nil value and deleted in the same transaction is gone,
// though Get answers nil for it as for a missing key.
func TestDeleteAfterANilPutDeletes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "shipbot.db"))
	defer s.Close()
	err := s.update(func(tx *wtx) error {
		b := tx.Bucket(bucketTest)
		if err := b.Put([]byte("k"), nil); err != nil {
			return err
		}
		return b.Delete([]byte("k"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored(t, s, "k"); got["k"] {
		t.Error("the key is still stored after its delete")
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptDedupesUnderConcurrency(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i%8) // 8 distinct keys, 8 senders each
			_, dup, err := s.Accept(context.Background(), Delivery{Key: key, Event: "Push Hook", Body: []byte("{}")})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if dup {
				dups++
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	p, err := s.Pending(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 8 || dups != 56 || s.InboxDepth() != 8 {
		t.Fatalf("pending %d, duplicates %d, depth %d; want 8, 56, 8", len(p), dups, s.InboxDepth())
	}
	for i := 1; i < len(p); i++ {
		if p[i].Seq <= p[i-1].Seq {
			t.Errorf("pending not in arrival order: %d after %d", p[i].Seq, p[i-1].Seq)
		}
	}
}

func TestCompleteIsAtomicAndOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	d, _, err := s.Accept(context.Background(), Delivery{Key: "a", Event: "Pipeline Hook"})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Complete(d.Seq, adding(Deployment{App: "web", Environment: "prod1", Status: StatusPending}, Deployment{App: "web", Environment: "prod2", Status: StatusPending}))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID >= recs[1].ID {
		t.Fatalf("ids not increasing: %+v", recs)
	}
	if _, err := s.Complete(d.Seq, adding(Deployment{App: "web"})); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second complete: %v, want ErrNotFound", err)
	}
	// The failed second Complete must not have added a record.
	all, _ := s.Deployments(nil)
	if len(all) != 2 {
		t.Fatalf("%d records after a refused complete, want 2", len(all))
	}
	// A redelivery after completion is still a duplicate.
	if _, dup, _ := s.Accept(context.Background(), Delivery{Key: "a"}); !dup {
		t.Error("a completed delivery's key was forgotten")
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	got, err := s.Deployment(recs[1].ID)
	if err != nil || got.Environment != "prod2" || got.Status != StatusPending {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if s.InboxDepth() != 0 {
		t.Errorf("depth %d after reopen, want 0", s.InboxDepth())
	}
}

func TestPendingSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	for _, k := range []string{"x", "y"} {
		if _, _, err := s.Accept(context.Background(), Delivery{Key: k, Body: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	p, _ := s.Pending(10)
	if len(p) != 2 || string(p[0].Body) != "x" || s.InboxDepth() != 2 {
		t.Fatalf("after reopen: %d pending, depth %d", len(p), s.InboxDepth())
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	defer s.Close()
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("second open took %s", waited)
	}
}

func adding(ds ...Deployment) func(*Tx) error {
	return func(tx *Tx) error {
		for _, d := range ds {
			if _, err := tx.AddDeployment(d); err != nil {
				return err
			}
		}
		return nil
	}
}

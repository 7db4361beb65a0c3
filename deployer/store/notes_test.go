package store

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Note("slack/msg/r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing note: %v, want ErrNotFound", err)
	}
	if err := s.PutNote("slack/msg/r1", []byte("C1/1700000000.1")); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := s.PutNoteOnce("dingtalk/used/t1", []byte("x"))
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("PutNoteOnce won %d times, want 1", wins.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What was stored survives a reopen.
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Note("slack/msg/r1"); err != nil || string(v) != "C1/1700000000.1" {
		t.Errorf("after reopen: %q, %v", v, err)
	}
	if ok, _ := s.PutNoteOnce("dingtalk/used/t1", nil); ok {
		t.Error("a used one-time key was stored again after reopen")
	}
	if err := s.DeleteNote("slack/msg/r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Note("slack/msg/r1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted note: %v", err)
	}
}

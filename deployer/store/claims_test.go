package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestClaimOncePerWindowAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	s, err := Open(path, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	claim := func(s *Store, key string, now time.Time) bool {
		t.Helper()
		ok, err := s.Claim(key, now, now.Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim(s, "slack/request/a", t0) {
		t.Fatal("a first claim was refused")
	}
	if claim(s, "slack/request/a", t0.Add(time.Minute)) {
		t.Error("a key was claimed twice within its window")
	}
	if !claim(s, "slack/request/b", t0) {
		t.Error("another key was refused")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{LockTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if claim(s, "slack/request/a", t0.Add(2*time.Minute)) {
		t.Error("a restart forgot a claim")
	}
	if n, err := s.PruneClaims(t0.Add(4 * time.Minute)); err != nil || n != 0 {
		t.Errorf("pruned %d live claims (err %v), want 0", n, err)
	}
	// Claimed at t0 until t0+5m; the second a claimed at t0+1m was refused
	// and did not extend it.
	if n, err := s.PruneClaims(t0.Add(5 * time.Minute)); err != nil || n != 2 {
		t.Errorf("pruned %d ended claims (err %v), want 2", n, err)
	}
	if !claim(s, "slack/request/a", t0.Add(6*time.Minute)) {
		t.Error("an ended claim could not be claimed again")
	}
}

// Ended claims past what one transaction may hold go in several, each of
// at most pruneChunk deletes.
func TestPruneClaimsInTransactionsOfBoundedSize(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	j := &countingJournal{}
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{LockTimeout: time.Second, NoSync: true, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var writes []Write
	for i := range 2500 {
		writes = append(writes, Write{Bucket: string(bucketClaims), Key: fmt.Appendf(nil, "click-%05d", i), Value: itob(uint64(now.Add(-time.Minute).UnixNano()))})
	}
	if err := s.Apply(writes); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneClaims(now)
	if err != nil || n != 2500 {
		t.Fatalf("pruned %d claims, %v; want 2500", n, err)
	}
	for _, size := range j.sizes {
		if size > pruneChunk {
			t.Errorf("a transaction of %d writes, want at most %d", size, pruneChunk)
		}
	}
	if len(j.sizes) < 3 {
		t.Errorf("%d transactions (%v), want at least 3", len(j.sizes), j.sizes)
	}
}

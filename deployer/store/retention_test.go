package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var day = 24 * time.Hour

func TestPruneDeletesOnlyWhatOutlivedItsRetention(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now.Add(-40 * day)
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{LockTimeout: time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Deliveries: an old processed one goes, an old pending one and a
	// young processed one stay.
	for _, d := range []struct {
		key  string
		age  time.Duration
		done bool
	}{{"old-done", 8 * day, true}, {"old-pending", 8 * day, false}, {"young-done", 6 * day, true}} {
		got, _, err := s.Accept(ctx, Delivery{Key: d.key, Event: "Push Hook", Body: []byte("{}"), ReceivedAt: now.Add(-d.age)})
		if err != nil {
			t.Fatal(err)
		}
		if d.done {
			if _, err := s.Complete(got.Seq, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Deployments of target a: two old finished ones (the newer of them is
	// the target's last word and stays), an old running one. Target b: a
	// young finished one.
	deps := []Deployment{
		{ID: FormatID(1), App: "a", Status: StatusSucceeded, Finished: now.Add(-60 * day)},
		{ID: FormatID(2), App: "a", Status: StatusFailed, Finished: now.Add(-31 * day)},
		{ID: FormatID(3), App: "a", Status: StatusRunning, Created: now.Add(-90 * day)},
		{ID: FormatID(4), App: "b", Status: StatusSucceeded, Finished: now.Add(-29 * day)},
	}
	for _, d := range deps {
		if err := s.PutDeployment(d); err != nil {
			t.Fatal(err)
		}
	}
	previews := []Preview{
		{Key: "1!1", Status: PreviewStopped, Updated: now.Add(-31 * day)},
		{Key: "1!2", Status: PreviewStopped, Updated: now.Add(-29 * day)},
		{Key: "1!3", Status: PreviewReady, Wanted: true, Updated: now.Add(-90 * day)},
	}
	if _, err := s.Update(func(tx *Tx) error {
		for _, p := range previews {
			if err := tx.PutPreview(p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Notes written 40 and 2 days ago; links kept 3 days, others 30.
	for _, k := range []string{"slack/msg/old", "dingtalk/used/old"} {
		if err := s.PutNote(k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	clock = now.Add(-2 * day)
	for _, k := range []string{"slack/msg/young", "dingtalk/used/young"} {
		if _, err := s.PutNoteOnce(k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}

	r := Retention{Deliveries: 7 * day, Records: 30 * day, Notes: 30 * day, NotePrefixes: map[string]time.Duration{"dingtalk/used/": day}}
	p, err := s.Prune(now, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Pruned{Deliveries: 1, Deployments: 1, Previews: 1, Notes: 3}); p != want {
		t.Errorf("pruned %+v, want %+v", p, want)
	}
	for key, wantDup := range map[string]bool{"old-done": false, "old-pending": true, "young-done": true} {
		// A redelivery of a pruned key is taken as new: its dedupe record is gone.
		if _, dup, err := s.Accept(ctx, Delivery{Key: key, Body: []byte("{}"), ReceivedAt: now}); err != nil || dup != wantDup {
			t.Errorf("delivery %s after prune: dup %v (%v), want %v", key, dup, err, wantDup)
		}
	}
	left, err := s.Deployments(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(left); got != "d000000000002 d000000000003 d000000000004" {
		t.Errorf("deployments left: %s", got)
	}
	for key, want := range map[string]bool{"1!1": false, "1!2": true, "1!3": true} {
		if _, err := s.Preview(key); (err == nil) != want {
			t.Errorf("preview %s: %v, want kept %v", key, err, want)
		}
	}
	for key, want := range map[string]bool{"slack/msg/old": false, "dingtalk/used/old": false, "dingtalk/used/young": false, "slack/msg/young": true} {
		if _, err := s.Note(key); (err == nil) != want {
			t.Errorf("note %s: %v, want kept %v", key, err, want)
		}
	}
}

func ids(ds []Deployment) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return strings.Join(out, " ")
}

// A note written before notes had times is aged from the first prune
// that sees it, not deleted at once.
func TestPruneStampsNotesOfUnknownAge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	if err := s.PutNote("old/format", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNoteTimes).Delete([]byte("old/format")) }); err != nil {
		t.Fatal(err)
	}
	r := Retention{Notes: day}
	for _, at := range []time.Time{now, now.Add(23 * time.Hour)} {
		if p, err := s.Prune(at, r); err != nil || p.Notes != 0 {
			t.Fatalf("prune at %s: %+v, %v; want nothing pruned", at, p, err)
		}
	}
	if p, err := s.Prune(now.Add(25*time.Hour), r); err != nil || p.Notes != 1 {
		t.Errorf("prune a day after it was first seen: %+v, %v; want the note pruned", p, err)
	}
}

// fillAndDrain accepts a backlog of n deliveries of size bytes each, then
// completes them all.
func fillAndDrain(t *testing.T, s *Store, n, size int, at time.Time) {
	t.Helper()
	body := []byte(strings.Repeat("x", size))
	var seqs []uint64
	for i := range n {
		d, _, err := s.Accept(context.Background(), Delivery{Key: fmt.Sprintf("k%d", i), Event: "Pipeline Hook", Body: body, ReceivedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, d.Seq)
	}
	for _, seq := range seqs {
		if _, err := s.Complete(seq, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// bbolt never gives freed pages back to the file system: opening with
// Compact does, once pruning has left most of the file free, and keeps
// every record.
func TestOpenCompactsAFileMostlyFree(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{LockTimeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillAndDrain(t, s, 2000, 1024, now.Add(-8*day))
	if err := s.PutDeployment(Deployment{ID: FormatID(1), App: "web", Status: StatusSucceeded, Finished: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	full := size(t, path)
	r := &Retention{Deliveries: 7 * day}
	// Without Compact the file keeps its size however much is pruned.
	s, err = Open(path, Options{LockTimeout: time.Second, Retention: r, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := size(t, path); got != full {
		t.Fatalf("pruning alone changed the file from %d to %d bytes", full, got)
	}
	s, err = Open(path, Options{LockTimeout: time.Second, Retention: r, Now: func() time.Time { return now }, Compact: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := size(t, path); got*4 > full {
		t.Errorf("compacted file is %d bytes of %d, want under a quarter", got, full)
	}
	if _, err := s.Deployment(FormatID(1)); err != nil {
		t.Errorf("deployment after compaction: %v", err)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the compaction's temporary file is left: %v", err)
	}
	// The store works on: a new delivery is taken, an old key is new again.
	if _, dup, err := s.Accept(context.Background(), Delivery{Key: "k1", Body: []byte("{}"), ReceivedAt: now}); err != nil || dup {
		t.Errorf("accept after compaction: dup %v, %v", dup, err)
	}
}

// countingJournal records the size of every transaction journaled.
type countingJournal struct{ sizes []int }

func (j *countingJournal) Record(_ context.Context, writes []Write) error {
	j.sizes = append(j.sizes, len(writes))
	return nil
}

// A prune that finds more than one transaction may hold (2,500 delivery
// keys and 700 notes, each note two writes) deletes all of it in
// transactions of at most pruneChunk writes.
func TestPruneDeletesALotInTransactionsOfBoundedSize(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now.Add(-40 * day)
	j := &countingJournal{}
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{LockTimeout: time.Second, NoSync: true, Now: func() time.Time { return clock }, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var writes []Write
	for i := range 2500 {
		writes = append(writes, Write{Bucket: string(bucketKeys), Key: fmt.Appendf(nil, "uuid:%05d", i),
			Value: fmt.Appendf(nil, `{"seq":%d,"receivedAt":%q}`, i+1, now.Add(-30*day).Format(time.RFC3339))})
	}
	for i := range 700 {
		key := fmt.Appendf(nil, "note-%03d", i)
		writes = append(writes, Write{Bucket: string(bucketNotes), Key: key, Value: []byte("v")},
			Write{Bucket: string(bucketNoteTimes), Key: key, Value: itob(uint64(now.Add(-30 * day).UnixNano()))})
	}
	if err := s.Apply(writes); err != nil {
		t.Fatal(err)
	}
	j.sizes = nil
	p, err := s.Prune(now, Retention{Deliveries: day, Notes: day})
	if err != nil || p.Deliveries != 2500 || p.Notes != 700 {
		t.Fatalf("pruned %+v, %v; want 2500 deliveries and 700 notes", p, err)
	}
	total := 0
	for _, n := range j.sizes {
		if n > pruneChunk {
			t.Errorf("a transaction of %d writes, want at most %d", n, pruneChunk)
		}
		total += n
	}
	if total != 2500+2*700 || len(j.sizes) < 4 {
		t.Errorf("%d writes in %d transactions (%v), want %d in at least 4", total, len(j.sizes), j.sizes, 2500+2*700)
	}
	if again, err := s.Prune(now, Retention{Deliveries: day, Notes: day}); err != nil || again.Total() != 0 {
		t.Errorf("a second prune: %+v, %v; want nothing left", again, err)
	}
}

// The budget's edge: 999 delivery keys leave one write in the first
// transaction, too few for a note (its value and its time), which the
// next transaction deletes.
func TestPruneGoesOnWhenANoteDoesNotFitTheRest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	j := &countingJournal{}
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{LockTimeout: time.Second, NoSync: true, Now: func() time.Time { return now.Add(-40 * day) }, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var writes []Write
	for i := range pruneChunk - 1 {
		writes = append(writes, Write{Bucket: string(bucketKeys), Key: fmt.Appendf(nil, "uuid:%05d", i),
			Value: fmt.Appendf(nil, `{"seq":%d,"receivedAt":%q}`, i+1, now.Add(-30*day).Format(time.RFC3339))})
	}
	writes = append(writes, Write{Bucket: string(bucketNotes), Key: []byte("note"), Value: []byte("v")},
		Write{Bucket: string(bucketNoteTimes), Key: []byte("note"), Value: itob(uint64(now.Add(-30 * day).UnixNano()))})
	if err := s.Apply(writes); err != nil {
		t.Fatal(err)
	}
	j.sizes = nil
	p, err := s.Prune(now, Retention{Deliveries: day, Notes: day})
	if err != nil || p.Deliveries != pruneChunk-1 || p.Notes != 1 {
		t.Fatalf("pruned %+v, %v; want %d deliveries and the note", p, err, pruneChunk-1)
	}
	if len(j.sizes) != 2 || j.sizes[0] != pruneChunk-1 || j.sizes[1] != 2 {
		t.Errorf("transactions of %v writes, want [%d 2]", j.sizes, pruneChunk-1)
	}
}

// Deployment records whose key is not their id (a store written by hand,
// or by an old version) are deleted by their key: a prune that counted a
// delete by id that deleted nothing would never see its work end.
func TestPruneDeletesDeploymentsByTheirKey(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{LockTimeout: time.Second, NoSync: true, Now: func() time.Time { return now.Add(-40 * day) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var writes []Write
	for i := range 1200 {
		writes = append(writes, Write{Bucket: string(bucketDeployments), Key: fmt.Appendf(nil, "k-%05d", i),
			Value: fmt.Appendf(nil, `{"id":"d-%05d","app":"a","status":"succeeded","finished":%q}`, i, now.Add(-60*day).Format(time.RFC3339))})
	}
	if err := s.Apply(writes); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var p Pruned
	go func() {
		var err error
		p, err = s.Prune(now, Retention{Records: day})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || p.Deployments != 1199 {
			t.Fatalf("pruned %+v, %v; want 1199 deployments, the newest kept", p, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("prune did not end within 30s")
	}
}

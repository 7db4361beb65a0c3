package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// memJournal keeps write sets in memory, and fails while fail is set.
type memJournal struct {
	mu   sync.Mutex
	sets [][]Write
	fail error
}

func (j *memJournal) Record(_ context.Context, ws []Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.sets = append(j.sets, slices.Clone(ws))
	return nil
}

// contents lists a store's records and sequences, sorted.
func contents(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	err := s.Contents(func(w Write) error {
		out = append(out, fmt.Sprintf("%s %q %q seq %d", w.Bucket, w.Key, w.Value, w.Sequence))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// workload writes through every kind of write the store has.
func workload(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 20 { // concurrent accepts share group commits
		wg.Go(func() {
			_, _, err := s.Accept(ctx, Delivery{Key: fmt.Sprint("uuid-", i), Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: now})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pending, err := s.Pending(100)
	must(err)
	for i, d := range pending[:10] {
		_, err := s.Complete(d.Seq, func(tx *Tx) error {
			if _, err := tx.AddDeployment(Deployment{App: "web", Environment: "dev", Status: StatusSucceeded, Created: now, Finished: now}); err != nil {
				return err
			}
			if _, err := tx.AddCommand(Command{Kind: "mr-note", Body: []byte("/promote"), RecordedAt: now}); err != nil {
				return err
			}
			if _, err := tx.Announce("release", now, func(id string) ([]byte, error) { return []byte(`{"id":"` + id + `"}`), nil }); err != nil {
				return err
			}
			if err := tx.PutPreview(Preview{Key: fmt.Sprint("42!", i), ProjectID: 42, IID: int64(i), Status: PreviewStopped, Updated: now.Add(-48 * time.Hour)}); err != nil {
				return err
			}
			_, err := tx.CreateRelease(func(id string) ([]byte, error) { return []byte(`{"id":"` + id + `"}`), nil })
			return err
		})
		must(err)
	}
	id, err := s.CreateRelease(func(id string) ([]byte, error) { return []byte(`{"v":1}`), nil })
	must(err)
	must(s.UpdateRelease(id, func([]byte) ([]byte, error) { return []byte(`{"v":2}`), nil }))
	_, err = s.Claim("slack:retry:1", now, now.Add(time.Minute))
	must(err)
	_, err = s.Claim("slack:retry:2", now.Add(-time.Hour), now.Add(-time.Minute))
	must(err)
	_, err = s.PruneClaims(now)
	must(err)
	must(s.PutNote("n1", []byte("a")))
	_, err = s.PutNoteOnce("n2", []byte("b"))
	must(err)
	must(s.PutNote("n3", []byte("c")))
	must(s.DeleteNote("n3"))
	must(s.UpdateLock("prod", func([]byte) ([]byte, error) { return []byte(`{"by":"alice"}`), nil }))
	must(s.UpdateLock("dev", func([]byte) ([]byte, error) { return []byte(`{"by":"bob"}`), nil }))
	must(s.UpdateLock("dev", func([]byte) ([]byte, error) { return nil, nil }))
	cmds, err := s.Commands(CommandRecorded, 10)
	must(err)
	_, _, err = s.StartCommand(cmds[0].Seq, now)
	must(err)
	_, err = s.Update(func(tx *Tx) error { return tx.FinishCommand(cmds[1].Seq) })
	must(err)
	out, err := s.Outbox(10)
	must(err)
	_, err = s.Update(func(tx *Tx) error { return tx.Delivered(out[0].Seq) })
	must(err)
	_, err = s.UpdatePreview("42!3", func(p *Preview) error { p.Title = "retitled"; return nil })
	must(err)
	_, err = s.Prune(now.Add(30*24*time.Hour), Retention{Deliveries: time.Hour, Records: 24 * time.Hour, Notes: time.Hour})
	must(err)
}

// A store rebuilt from its journal alone holds exactly what the store
// holds: no write escapes the journal.
func TestEveryWriteIsJournaled(t *testing.T) {
	j := &memJournal{}
	s, err := Open(filepath.Join(t.TempDir(), "shipbot.db"), Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	workload(t, s, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))

	rebuilt := open(t, filepath.Join(t.TempDir(), "rebuilt.db"))
	defer rebuilt.Close()
	for _, ws := range j.sets {
		if err := rebuilt.Apply(ws); err != nil {
			t.Fatal(err)
		}
	}
	want, got := contents(t, s), contents(t, rebuilt)
	if len(want) < 30 {
		t.Fatalf("the workload left only %d records: it exercises too little", len(want))
	}
	if !slices.Equal(got, want) {
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("the rebuilt store lacks %s", w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("the rebuilt store has %s, which the store has not", g)
			}
		}
	}
	if s.InboxDepth() != rebuilt.InboxDepth() {
		t.Errorf("inbox depth %d rebuilt, %d in the store", rebuilt.InboxDepth(), s.InboxDepth())
	}
}

// A write whose journal entry fails is not stored, and says why.
func TestAWriteTheJournalRefusesIsNotStored(t *testing.T) {
	j := &memJournal{fail: errors.New("apiserver down")}
	s, err := Open(filepath.Join(t.TempDir(), "shipbot.db"), Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := contents(t, s)
	_, _, err = s.Accept(context.Background(), Delivery{Key: "k", Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("apiserver down")) {
		t.Errorf("accept: %v, want the journal's error", err)
	}
	if err := s.PutNote("n", []byte("v")); err == nil {
		t.Error("a note was stored without its journal entry")
	}
	if after := contents(t, s); !slices.Equal(after, before) {
		t.Errorf("the store changed: %v", after)
	}
	if s.InboxDepth() != 0 {
		t.Errorf("inbox depth %d", s.InboxDepth())
	}
}

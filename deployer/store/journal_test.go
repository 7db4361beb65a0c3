package store_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/storetest"
)

// memJournal keeps write sets in memory, and fails while fail is set.
type memJournal struct {
	mu   sync.Mutex
	sets [][]store.Write
	fail error
}

func (j *memJournal) Record(_ context.Context, ws []store.Write) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.sets = append(j.sets, slices.Clone(ws))
	return nil
}

// A store rebuilt from its journal alone holds exactly what the store
// holds: no write escapes the journal.
func TestEveryWriteIsJournaled(t *testing.T) {
	j := &memJournal{}
	s, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Workload(t, s, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))

	rebuilt, err := store.Open(filepath.Join(t.TempDir(), "rebuilt.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	for _, ws := range j.sets {
		if err := rebuilt.Apply(ws); err != nil {
			t.Fatal(err)
		}
	}
	want, got := storetest.Contents(t, s), storetest.Contents(t, rebuilt)
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
	s, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := storetest.Contents(t, s)
	_, _, err = s.Accept(context.Background(), store.Delivery{Key: "k", Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: time.Now()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("apiserver down")) {
		t.Errorf("accept: %v, want the journal's error", err)
	}
	if err := s.PutNote("n", []byte("v")); err == nil {
		t.Error("a note was stored without its journal entry")
	}
	if after := storetest.Contents(t, s); !slices.Equal(after, before) {
		t.Errorf("the store changed: %v", after)
	}
	if s.InboxDepth() != 0 {
		t.Errorf("inbox depth %d", s.InboxDepth())
	}
}

// A transaction that changes nothing (the same bytes put again, a key
// deleted that is not there) writes no journal entry; one that changes
// something writes only what changed.
func TestAWriteThatChangesNothingIsNotJournaled(t *testing.T) {
	j := &memJournal{}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) // a note's time stamp is written too
	s, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{Journal: j, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutNote("n", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateRelease(func(id string) ([]byte, error) { return []byte(`{"id":"` + id + `"}`), nil })
	if err != nil {
		t.Fatal(err)
	}
	before := len(j.sets)
	if err := s.PutNote("n", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRelease(id, func(v []byte) ([]byte, error) { return v, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNote("never-there"); err != nil {
		t.Fatal(err)
	}
	if got := j.sets[before:]; len(got) != 0 {
		t.Errorf("unchanged writes journaled: %v", got)
	}
	if err := s.PutNote("n", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	var notes []store.Write
	for _, w := range j.sets[len(j.sets)-1] {
		if w.Bucket == "notes" {
			notes = append(notes, w)
		}
	}
	if len(notes) != 1 || string(notes[0].Value) != "v2" {
		t.Errorf("a changed note journaled as %v, want the one put of v2", notes)
	}
}

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

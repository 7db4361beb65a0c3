package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// Contents lists a store's records and sequences, sorted. A value that is
// a JSON object is listed as the document it is, in one spelling (keys
// sorted, no spaces): the apiserver keeps a document that way, not as the
// bytes it was given.
func Contents(t *testing.T, s *store.Store) []string {
	t.Helper()
	var out []string
	err := s.Contents(func(w store.Write) error {
		out = append(out, fmt.Sprintf("%s %q %q seq %d", w.Bucket, w.Key, canonical(w.Value), w.Sequence))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// canonical is value in one spelling when it is a JSON object, else value.
func canonical(value []byte) []byte {
	if !bytes.HasPrefix(bytes.TrimLeft(value, " \t\r\n"), []byte("{")) || !json.Valid(value) {
		return value
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil || dec.More() {
		return value
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return value
	}
	return out
}

// Workload writes through every kind of write the store has: a journal
// that misses any of them fails a rebuild from it.
func Workload(t *testing.T, s *store.Store, now time.Time) {
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
			_, _, err := s.Accept(ctx, store.Delivery{Key: fmt.Sprint("uuid-", i), Event: "Push Hook", Body: []byte(`{}`), ReceivedAt: now})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pending, err := s.Pending(100)
	must(err)
	for i, d := range pending[:10] {
		_, err := s.Complete(d.Seq, func(tx *store.Tx) error {
			if _, err := tx.AddDeployment(store.Deployment{App: "web", Environment: "dev", Created: now, Finished: now}); err != nil {
				return err
			}
			if _, err := tx.AddCommand(store.Command{Kind: "mr-note", Body: []byte("/promote"), RecordedAt: now}); err != nil {
				return err
			}
			if _, err := tx.Announce("release", now, func(id string) ([]byte, error) { return []byte(`{"id":"` + id + `"}`), nil }); err != nil {
				return err
			}
			if err := tx.PutPreview(store.Preview{Key: fmt.Sprint("42!", i), ProjectID: 42, IID: int64(i), Updated: now.Add(-48 * time.Hour)}); err != nil {
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
	cmds, err := s.Commands(store.CommandRecorded, 10)
	must(err)
	_, _, err = s.StartCommand(cmds[0].Seq, now)
	must(err)
	_, err = s.Update(func(tx *store.Tx) error { return tx.FinishCommand(cmds[1].Seq) })
	must(err)
	out, err := s.Outbox(10)
	must(err)
	_, err = s.Update(func(tx *store.Tx) error { return tx.Delivered(out[0].Seq) })
	must(err)
	_, err = s.UpdatePreview("42!3", func(p *store.Preview) error { p.Title = "retitled"; return nil })
	must(err)
	_, err = s.Prune(now.Add(30*24*time.Hour), store.Retention{Deliveries: time.Hour, Records: 24 * time.Hour, Notes: time.Hour})
	must(err)
}

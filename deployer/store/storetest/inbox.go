// Package storetest is the conformance suite that every backend of
// shipbot's records passes, so that they can stand in for each other.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// Inbox is the part of a backend that takes webhooks in.
type Inbox interface {
	Accept(ctx context.Context, d store.Delivery) (stored store.Delivery, dup bool, err error)
	Pending(ctx context.Context, limit int) ([]store.Delivery, error)
}

// TestInbox checks what intake and the inbox worker rely on: a key is
// stored once however often and however concurrently it is delivered, a
// duplicate reports the first delivery's time, and deliveries come back
// byte for byte in the order they were received. newInbox returns an
// empty inbox.
func TestInbox(t *testing.T, newInbox func(t *testing.T) Inbox) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	t.Run("a redelivery is a duplicate of the first", func(t *testing.T) {
		in := newInbox(t)
		first, dup, err := in.Accept(t.Context(), store.Delivery{Key: "uuid-1", Event: "Push Hook", Body: []byte(`{"a":1}`), ReceivedAt: t0})
		if err != nil || dup {
			t.Fatalf("first delivery: dup %v, %v", dup, err)
		}
		again, dup, err := in.Accept(t.Context(), store.Delivery{Key: "uuid-1", Event: "Push Hook", Body: []byte(`{"a":2}`), ReceivedAt: t0.Add(time.Minute)})
		if err != nil || !dup {
			t.Fatalf("redelivery: dup %v, %v; want a duplicate", dup, err)
		}
		if again.Key != first.Key || !again.ReceivedAt.Equal(t0) {
			t.Errorf("the duplicate reports key %q received %s, want %q received %s", again.Key, again.ReceivedAt, first.Key, t0)
		}
		wantPending(t, in, []store.Delivery{{Key: "uuid-1", Event: "Push Hook", Body: []byte(`{"a":1}`), ReceivedAt: t0}})
	})
	t.Run("deliveries come back in the order received, byte for byte", func(t *testing.T) {
		in := newInbox(t)
		large := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB
		want := []store.Delivery{
			{Key: "c", Event: "Pipeline Hook", Body: []byte{0xff, 0x00, '{', 0xc3}, ReceivedAt: t0.Add(time.Millisecond)},
			{Key: "a", Event: "Merge Request Hook", Body: large, ReceivedAt: t0.Add(2 * time.Millisecond)},
			{Key: "Idempotency-Key: x/y z", Event: "Note Hook", Body: []byte(`{}`), ReceivedAt: t0.Add(3 * time.Millisecond)},
		}
		for _, d := range want {
			if _, dup, err := in.Accept(t.Context(), d); err != nil || dup {
				t.Fatalf("accept %s: dup %v, %v", d.Key, dup, err)
			}
		}
		wantPending(t, in, want)
	})
	t.Run("replicas racing on one delivery store it once", func(t *testing.T) {
		in := newInbox(t)
		const racers = 16
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			fresh int
			errs  []error
		)
		for i := range racers {
			wg.Go(func() {
				_, dup, err := in.Accept(t.Context(), store.Delivery{Key: "raced", Event: "Push Hook", Body: fmt.Appendf(nil, `{"racer":%d}`, i), ReceivedAt: t0})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else if !dup {
					fresh++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 || fresh != 1 {
			t.Fatalf("%d of %d racers stored it as new (errors: %v), want 1", fresh, racers, errs)
		}
		got, err := in.Pending(t.Context(), 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("pending %d deliveries (%v), want 1", len(got), err)
		}
	})
}

func wantPending(t *testing.T, in Inbox, want []store.Delivery) {
	t.Helper()
	got, err := in.Pending(t.Context(), len(want)+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("pending %d deliveries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Event != w.Event || !bytes.Equal(g.Body, w.Body) || !g.ReceivedAt.Equal(w.ReceivedAt) {
			t.Errorf("pending[%d] = %q %q received %s (%d bytes), want %q %q received %s (%d bytes)",
				i, g.Key, g.Event, g.ReceivedAt, len(g.Body), w.Key, w.Event, w.ReceivedAt, len(w.Body))
		}
	}
}

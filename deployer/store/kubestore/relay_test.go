package kubestore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Deliveries stored in the cluster, before and while the relay runs, reach
// the engine's inbox once each, in the order received, and leave the
// cluster's.
func TestRelayMovesEveryDeliveryOnce(t *testing.T) {
	in, st := newInbox(t), openStore(t)
	t0 := time.Now().UTC()
	accept := func(i int) {
		t.Helper()
		d := store.Delivery{Key: fmt.Sprintf("uuid-%02d", i), Event: "Push Hook", Body: fmt.Appendf(nil, `{"i":%d}`, i), ReceivedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		if _, _, err := in.Accept(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		accept(i)
	}
	woken := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Relay{From: in, To: st, Moved: func() { woken <- struct{}{} }, Every: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}.Run(ctx)
	}()
	waitInbox(t, st, 5)
	for i := 5; i < 10; i++ {
		accept(i) // seen through the watch: Every is an hour
	}
	got := waitInbox(t, st, 10)
	// Each is removed from the cluster just after the engine's inbox took
	// it: wait for the last removal before stopping the relay.
	deadline := time.Now().Add(10 * time.Second)
	left, err := in.Pending(t.Context(), 100)
	for ; err == nil && len(left) > 0 && time.Now().Before(deadline); left, err = in.Pending(t.Context(), 100) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	for i, d := range got {
		if want := fmt.Sprintf("uuid-%02d", i); d.Key != want || string(d.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Errorf("engine inbox[%d] = %s %s, want %s", i, d.Key, d.Body, want)
		}
	}
	if err != nil || len(left) != 0 {
		t.Errorf("the cluster's inbox still holds %d deliveries after 10 s (%v)", len(left), err)
	}
	if len(woken) == 0 {
		t.Error("the relay never woke the worker")
	}
}

// A relay that took a delivery but crashed before removing it moves it
// again after a restart; the engine's inbox takes it as a duplicate.
func TestRelayAfterACrashStoresNothingTwice(t *testing.T) {
	in, st := newInbox(t), openStore(t)
	d := store.Delivery{Key: "uuid-crash", Event: "Pipeline Hook", Body: []byte(`{}`), ReceivedAt: time.Now().UTC()}
	if _, _, err := in.Accept(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, dup, err := st.Accept(t.Context(), d); err != nil || dup { // the crashed relay's half
		t.Fatalf("accept: dup %v, %v", dup, err)
	}
	pending, err := in.Pending(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := Relay{From: in, To: st}.Pass(t.Context(), pending)
	if err != nil || moved != 0 {
		t.Fatalf("pass moved %d as new (%v), want 0: the engine had it", moved, err)
	}
	if n := len(waitInbox(t, st, 1)); n != 1 {
		t.Errorf("engine inbox holds %d, want 1", n)
	}
	if left, _ := in.Pending(t.Context(), 10); len(left) != 0 {
		t.Errorf("the cluster's inbox still holds %d", len(left))
	}
}

func waitInbox(t *testing.T, st *store.Store, n int) []store.Delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := st.Pending(n + 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("engine inbox holds %d deliveries, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

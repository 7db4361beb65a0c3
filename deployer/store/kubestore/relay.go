package kubestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/shipbot/shipbot/deployer/store"
)

// Acceptor is the engine's own inbox, which dedupes by key.
type Acceptor interface {
	Accept(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)
}

// Relay moves the deliveries in the cluster's inbox into the engine's, in
// the order they were received. Each is accepted there first and removed
// here after, so a crash in between leaves it to be moved again, and the
// engine's inbox, which has seen its key, takes it as a duplicate: every
// delivery reaches the engine once.
type Relay struct {
	From *Inbox
	To   Acceptor
	// Moved, if set, is called after a pass that moved new deliveries, to
	// wake the engine's inbox worker.
	Moved func()
	// Every bounds how long a delivery can wait if a watch event is
	// missed; a minute when zero.
	Every time.Duration
	Log   *slog.Logger
}

// relayBatch is how many deliveries one pass moves at most.
const relayBatch = 256

// Run moves deliveries until ctx ends: at once, whenever a Delivery is
// created, and at least every r.Every.
func (r Relay) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = time.Minute
	}
	for ctx.Err() == nil {
		rv, err := r.drain(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("relay deliveries from the cluster", "namespace", r.From.ns, "err", err)
		}
		r.waitForMore(ctx, rv, every)
	}
}

// drain moves batches until the cluster's inbox is empty; it returns the
// resourceVersion of the last list, from which to watch for more.
func (r Relay) drain(ctx context.Context) (string, error) {
	for {
		// A Delivery that cannot be read is reported, and the rest moved.
		pending, rv, unreadable := r.From.pending(ctx, relayBatch)
		if len(pending) == 0 {
			return rv, unreadable
		}
		moved, err := r.Pass(ctx, pending)
		if moved > 0 && r.Moved != nil {
			r.Moved()
		}
		if err != nil {
			return "", err
		}
	}
}

// Pass moves the deliveries given, oldest first, and says how many were
// new to the engine's inbox. It stops at the first that fails.
func (r Relay) Pass(ctx context.Context, pending []store.Delivery) (int, error) {
	moved := 0
	for _, d := range pending {
		if _, dup, err := r.To.Accept(ctx, d); err != nil {
			return moved, fmt.Errorf("take delivery %s into the engine's inbox: %w", d.Key, err)
		} else if !dup {
			moved++
		}
		if err := r.From.Remove(ctx, d.Key); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// waitForMore returns when a Delivery is added after resourceVersion rv,
// when every has passed, or when ctx ends.
func (r Relay) waitForMore(ctx context.Context, rv string, every time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, every)
	defer cancel()
	if rv == "" {
		<-ctx.Done()
		return
	}
	timeout := int64(every / time.Second)
	w, err := r.From.client.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &timeout})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			r.Log.Warn("watch deliveries in the cluster", "namespace", r.From.ns, "err", err)
			select { // a failing apiserver is not polled in a loop
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Added || ev.Type == watch.Error {
				return
			}
		}
	}
}

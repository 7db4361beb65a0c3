package authz

import (
	"context"
	"errors"
	"sync"
	"time"
)

// pruneAt is the size from which storing first drops expired entries, so
// the cache stays about as big as what was looked up in the last TTL.
const pruneAt = 256

// cache keeps GitLab's answers for a while and makes callers who ask for
// the same key at the same time share one request, so a burst of clicks
// costs one lookup. It never keeps an error: the next call asks again.
type cache[K comparable, V any] struct {
	ttl time.Duration // ≤ 0 keeps nothing
	now func() time.Time

	mu       sync.Mutex
	m        map[K]cached[V]
	inflight map[K]*flight[V]
}

type cached[V any] struct {
	v       V
	expires time.Time
}

// flight is a fetch under way; done closes once v and err are set.
type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func newCache[K comparable, V any](ttl time.Duration, now func() time.Time) *cache[K, V] {
	return &cache[K, V]{ttl: ttl, now: now, m: map[K]cached[V]{}, inflight: map[K]*flight[V]{}}
}

// load returns k's value from the cache, or from fetch, called once for
// everyone who asks for k while it runs. They share its error too, even
// one from the first caller's context.
func (c *cache[K, V]) load(ctx context.Context, k K, fetch func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	if e, ok := c.m[k]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.v, nil
	}
	if f, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.v, f.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	f := &flight[V]{done: make(chan struct{}), err: errFetchPanicked}
	c.inflight[k] = f
	c.mu.Unlock()
	defer func() { // even if fetch panics, so that no one waits forever
		c.mu.Lock()
		delete(c.inflight, k)
		if f.err == nil {
			c.store(k, f.v)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.v, f.err = fetch(ctx)
	return f.v, f.err
}

var errFetchPanicked = errors.New("authz: GitLab lookup panicked")

// store keeps v under k for the TTL. Callers hold c.mu.
func (c *cache[K, V]) store(k K, v V) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	if len(c.m) >= pruneAt {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
	}
	c.m[k] = cached[V]{v: v, expires: now.Add(c.ttl)}
}

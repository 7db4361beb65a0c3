package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// levelTimeout bounds one load level, so a stuck server fails the run instead
// of hanging it.
const levelTimeout = 90 * time.Second

// result is what one load level measured.
type result struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// quantile is the nearest-rank q-quantile of the latencies, in milliseconds.
func (r result) quantile(q float64) float64 {
	i := max(0, int(math.Ceil(q*float64(len(r.lat))))-1)
	return float64(r.lat[i]) / float64(time.Millisecond)
}

// merge adds another run of the same level, for -benchtime other than 1x.
func (r result) merge(o result) result {
	lat := slices.Concat(r.lat, o.lat)
	slices.Sort(lat)
	return result{n: r.n + o.n, elapsed: r.elapsed + o.elapsed, lat: lat}
}

// op is one timed unit of work: one delivery, one write. i is unique per call.
type op func(ctx context.Context, i int) error

// drive calls do n times from senders goroutines, each sending its next
// request as soon as the previous one is answered (a closed loop), and times
// every call. The first error stops all senders.
func drive(ctx context.Context, n, senders int, do op) (result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				if err := do(ctx, i); err != nil {
					cancel(fmt.Errorf("request %d: %w", i, err))
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	return result{n: n, elapsed: elapsed, lat: lat}, nil
}

// level is one load step: how many concurrent senders, how many timed calls.
type level struct {
	senders  int
	requests int
}

// warmup is the untimed calls made first, so every sender has its
// connection open and the file has its first pages before timing starts.
func (l level) warmup() int { return 2 * l.senders }

// total is how many records a level leaves behind, warm-up included.
func (l level) total() int { return l.warmup() + l.requests }

// run warms up, then drives the timed calls. Each call gets a random key,
// as GitLab's X-Gitlab-Event-UUID is random, drawn before timing starts.
func (l level) run(ctx context.Context, do func(ctx context.Context, key string) error) (result, error) {
	warm, timed := randomKeys(l.warmup()), randomKeys(l.requests)
	_, err := drive(ctx, len(warm), l.senders, func(ctx context.Context, i int) error { return do(ctx, warm[i]) })
	if err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	return drive(ctx, len(timed), l.senders, func(ctx context.Context, i int) error { return do(ctx, timed[i]) })
}

func randomKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = rand.Text()
	}
	return keys
}

// Package fakeclock is a clock that tests move by hand, so no test sleeps
// through a gate interval, a cache TTL or a rate-limit window. It is safe
// for the engine's goroutines and the test to share.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a time source that stands still until the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New is a Clock standing at t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now is the time the clock stands at.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

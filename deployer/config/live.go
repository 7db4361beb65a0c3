package config

import "sync/atomic"

// Current gives the config in force. Each call is one whole, validated
// config: a consumer loads it once per piece of work (a delivery, a
// deploy, a check) and uses that one, so it never sees half of two files.
// A *Config is its own Current and never changes; a *Live is swapped whole
// by a reload.
type Current interface {
	Load() *Config
}

// Load returns c itself: a fixed config, for tests and one-shot commands.
func (c *Config) Load() *Config { return c }

// Live holds the config `shipbot serve` runs with; a reload validates a
// new file and then swaps it in with Store.
type Live struct{ p atomic.Pointer[Config] }

var (
	_ Current = (*Live)(nil)
	_ Current = (*Config)(nil)
)

// NewLive holds c.
func NewLive(c *Config) *Live {
	l := &Live{}
	l.p.Store(c)
	return l
}

// Load returns the config in force.
func (l *Live) Load() *Config { return l.p.Load() }

// Store puts c in force for every later Load; work already holding the
// previous config goes on with it.
func (l *Live) Store(c *Config) { l.p.Store(c) }

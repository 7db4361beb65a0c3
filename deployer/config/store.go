package config

import (
	"time"
)

// Retention says how long the store keeps records that nothing needs
// once they are old. bbolt reuses the space they free; shipbot gives it
// back to the file system by compacting the file at start-up.
type Retention struct {
	// Deliveries keeps the key of each processed webhook delivery, which
	// drops GitLab's redeliveries of it; 7d.
	Deliveries Duration `yaml:"deliveries"`
	// Records keeps finished deployments (but always the newest of each
	// target) and stopped previews; 30d.
	Records Duration `yaml:"records"`
	// Notes keeps what surfaces note for themselves (the Slack message of
	// a release, a merge request's plan comment) after it was last
	// written; 30d.
	Notes Duration `yaml:"notes"`
	// UsedLinks keeps the record that a one-time DingTalk link was used;
	// 7d, and at least dingtalk.linkTTL, or a used link would work again.
	UsedLinks Duration `yaml:"usedLinks"`
	// Interval is how often expired records are deleted; 1h.
	Interval Duration `yaml:"interval"`
}

const day = 24 * time.Hour

func (r *Retention) setDefaults() {
	defaults := []struct {
		d   *Duration
		def time.Duration
	}{{&r.Deliveries, 7 * day}, {&r.Records, 30 * day}, {&r.Notes, 30 * day}, {&r.UsedLinks, 7 * day}, {&r.Interval, time.Hour}}
	for _, x := range defaults {
		if x.d.Duration == 0 {
			x.d.Duration = x.def
		}
	}
}

func (c *Config) validateStore(v *validator) {
	path := []any{"store", "retention"}
	r := c.Store.Retention
	for _, x := range []struct {
		key string
		d   time.Duration
		min time.Duration
	}{{"deliveries", r.Deliveries.Duration, time.Hour}, {"records", r.Records.Duration, time.Hour},
		{"notes", r.Notes.Duration, time.Hour}, {"usedLinks", r.UsedLinks.Duration, time.Hour}, {"interval", r.Interval.Duration, time.Minute}} {
		if x.d < x.min {
			v.failf(at(path, x.key), "%s is too short; use at least %s", x.d, x.min)
		}
	}
	if c.DingTalk != nil && r.UsedLinks.Duration < c.DingTalk.LinkTTL.Duration {
		v.failf(at(path, "usedLinks"), "%s is shorter than dingtalk.linkTTL (%s): a used link would work again once its record is gone",
			r.UsedLinks.Duration, c.DingTalk.LinkTTL.Duration)
	}
}

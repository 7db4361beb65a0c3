package config

import "time"

// Commands tunes the worker that runs the commands people type in merge
// request comments, apart from the inbox, so that a slow GitLab or a busy
// commenter never holds up a deploy.
type Commands struct {
	// Timeout bounds one command, its GitLab calls included; 30s when 0.
	Timeout Duration `yaml:"timeout"`
	// PerUserPerMinute is how many commands one person may give a minute,
	// in bursts of up to Burst; 10 and 5 when 0.
	PerUserPerMinute int `yaml:"perUserPerMinute"`
	Burst            int `yaml:"burst"`
}

func (c *Commands) setDefaults() {
	if c.Timeout.Duration == 0 {
		c.Timeout.Duration = 30 * time.Second
	}
	if c.PerUserPerMinute == 0 {
		c.PerUserPerMinute = 10
	}
	if c.Burst == 0 {
		c.Burst = 5
	}
}

func (c Commands) validate(v *validator) {
	if c.Timeout.Duration < time.Second || c.Timeout.Duration > 10*time.Minute {
		v.failf([]any{"commands", "timeout"}, "%s is not from 1s to 10m", c.Timeout.Duration)
	}
	if c.PerUserPerMinute < 1 || c.PerUserPerMinute > 600 {
		v.failf([]any{"commands", "perUserPerMinute"}, "must be from 1 to 600, got %d", c.PerUserPerMinute)
	}
	if c.Burst < 1 || c.Burst > 100 {
		v.failf([]any{"commands", "burst"}, "must be from 1 to 100, got %d", c.Burst)
	}
}

package release

import (
	"testing"
	"time"
)

// routed is a canary's stages with a header stage and a mirror stage first.
var routed = []Stage{
	{Match: &Match{Headers: map[string]string{"x-canary": "true"}}, Continue: Manual},
	{Mirror: 20}, {Target: 10}, {Target: 100},
}

func TestDescribe(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name string
		edit func(r *Release)
		now  time.Duration
		want string
	}{
		{"pending", func(r *Release) { r.Phase = Pending }, 0,
			"pending · canary v1-3-0 → v1-4-0 in 3 stages (10 → 50 → 100 %)"},
		{"pending, sized by traffic", func(r *Release) { r.Phase, r.CanaryScale = Pending, CanaryScaleMatchTraffic }, 0,
			"pending · canary (matchTraffic) v1-3-0 → v1-4-0 in 3 stages (10 → 50 → 100 %)"},
		{"pending, full size", func(r *Release) { r.Phase, r.CanaryScale = Pending, CanaryScaleFull }, 0,
			"pending · canary v1-3-0 → v1-4-0 in 3 stages (10 → 50 → 100 %)"},
		{"moving to the first stage", func(r *Release) { r.Phase = Progressing }, 0,
			"stage 1/3 · 0 % · → 10 %"},
		{"waiting for pods", func(r *Release) {
			r.Phase = Progressing
			r.Checks = []Check{{Stage: 0, When: Pods, Gate: "pods", Status: CheckRunning, Started: t0, Message: "web-v1-4-0: 3/10 available"}}
		}, 90 * time.Second, "stage 1/3 · 0 % · → 10 % · web-v1-4-0: 3/10 available 1m"},
		{"verifying with a gate", func(r *Release) {
			r.Phase, r.Percent = Verifying, 10
			r.Checks = []Check{{Stage: 0, When: After, Gate: "errors", Status: CheckRunning, Started: t0, Runs: 3, Failures: 1}}
		}, 5 * time.Minute, "stage 1/3 · 10 % · after gate errors, run 3, 1 failed 5m"},
		{"waiting for approval", func(r *Release) {
			r.Phase, r.Stage, r.Percent = Paused, 1, 10
			r.History = []Entry{{At: at(time.Minute), Actor: EngineActor, Kind: EntryTransition, Phase: Paused}}
		}, 13 * time.Minute, "stage 2/3 · 10 % · waiting for approval 12m"},
		{"paused by a person", func(r *Release) {
			r.Phase, r.Stage, r.Percent = Paused, 1, 50
			r.History = []Entry{{At: t0, Actor: "bob", Kind: EntryTransition, Phase: Paused}}
		}, 2*time.Hour + 5*time.Minute, "stage 2/3 · 50 % · paused by bob 2h5m"},
		{"paused by a gate", func(r *Release) {
			r.Phase, r.Stage, r.Percent = Paused, 1, 50
			r.Checks = []Check{{Stage: 1, When: After, Gate: "smoke", Status: CheckFailed, Message: "HTTP 500"}}
			r.History = []Entry{{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused}}
		}, 30 * time.Second, "stage 2/3 · 50 % · paused: gate smoke failed (HTTP 500) 30s"},
		{"waiting to finish", func(r *Release) {
			r.Phase, r.Stage, r.Percent = Paused, 3, 100
			r.History = []Entry{{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused}}
		}, 26 * time.Hour, "stage 3/3 · 100 % · waiting for approval to finish 1d2h"},
		{"finishing", func(r *Release) { r.Phase, r.Stage, r.Percent = Progressing, 3, 100 }, 0,
			"stage 3/3 · 100 % · finishing: scaling v1-3-0 down"},
		{"rolling back", func(r *Release) {
			r.Phase, r.Stage, r.Percent, r.Reason = RollingBack, 1, 50, "gate smoke failed: HTTP 500"
		}, 0, "stage 2/3 · 50 % · rolling back to v1-3-0 · gate smoke failed: HTTP 500"},
		{"succeeded", func(r *Release) { r.Phase, r.Stage, r.Percent, r.Updated = Succeeded, 3, 100, at(14*time.Minute) }, 0,
			"succeeded · 100 % on v1-4-0 · took 14m"},
		{"rolled back", func(r *Release) { r.Phase, r.Stage, r.Reason = RolledBack, 1, "rollback by alice via slack" }, 0,
			"rolled back to v1-3-0 at stage 2/3 · rollback by alice via slack"},
		{"aborted", func(r *Release) { r.Phase, r.Stage, r.Percent, r.Reason = Aborted, 0, 10, "abort by alice via cli" }, 0,
			"aborted at stage 1/3 · 10 % · abort by alice via cli"},
		{"failed", func(r *Release) {
			r.Phase, r.From, r.Stages, r.Reason = Failed, Revision{}, []Stage{{Target: 100}}, "pods not available"
		}, 0, "failed at stage 1/1 · 0 % · pods not available"},
		{"pending with routing stages", func(r *Release) { r.Phase, r.Stages = Pending, routed }, 0,
			"pending · canary v1-3-0 → v1-4-0 in 4 stages (header x-canary=true → mirror 20 → 10 → 100 %)"},
		{"moving to a header stage", func(r *Release) { r.Phase, r.Stages = Progressing, routed }, 0,
			"stage 1/4 · 0 % · → header x-canary=true"},
		{"verifying a mirror stage", func(r *Release) { r.Phase, r.Stages, r.Stage = Verifying, routed, 1 }, 0,
			"stage 2/4 · 0 % + mirror 20 % · verifying"},
		{"paused after a header stage", func(r *Release) {
			r.Phase, r.Stages, r.Stage = Paused, routed, 1
			r.History = []Entry{{At: t0, Actor: EngineActor, Kind: EntryTransition, Phase: Paused}}
		}, time.Minute, "stage 2/4 · 0 % + header x-canary=true · waiting for approval 1m"},
		{"weights after routing stages", func(r *Release) { r.Phase, r.Stages, r.Stage, r.Percent = Verifying, routed, 2, 10 }, 0,
			"stage 3/4 · 10 % · verifying"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := model(Pending, 0, 0)
			tt.edit(&r)
			if got := Describe(r, at(tt.now)); got != tt.want {
				t.Errorf("Describe =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

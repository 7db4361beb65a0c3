package main

import (
	"context"
	"fmt"
	"maps"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

// script is what -once types, starting at v1.1.0's first pause, and what
// each key must lead to: the release's phase and the weights read back
// from the VirtualService. It continues v1.1.0 through every stage, then
// tags v1.2.0, promotes it to 50 % and rolls it back.
var script = []struct {
	keys    string
	phase   release.Phase
	weights weights
}{
	{"c", release.Paused, weights{"v1-0-0": 50, "v1-1-0": 50}},
	{"c", release.Succeeded, weights{"": 100}},
	{"t", release.Paused, weights{"v1-1-0": 90, "v1-2-0": 10}},
	{"p 50", release.Paused, weights{"v1-1-0": 50, "v1-2-0": 50}},
	{"r", release.RolledBack, weights{"": 100}},
}

// unattended runs the script through the same keys a person presses, and
// fails at the first key that does not lead where it should in time.
func (d *demo) unattended(ctx context.Context, rel api.Release) error {
	for _, step := range script {
		d.prompt(rel)
		fmt.Println(step.keys)
		next, err := d.pressLine(ctx, rel, step.keys)
		if err != nil {
			return fmt.Errorf("key %q: %w", step.keys, err)
		}
		rel = next
		if rel.Phase != step.phase {
			return fmt.Errorf("key %q: %s is %s, want %s", step.keys, rel.ID, rel.Phase, step.phase)
		}
		if err := d.waitWeights(ctx, step.weights); err != nil {
			return fmt.Errorf("key %q: %w", step.keys, err)
		}
		say(fmt.Sprintf("as expected: %s, VirtualService %s", rel.Phase, step.weights))
	}
	return nil
}

// waitWeights waits for the VirtualService's weights to be want.
func (d *demo) waitWeights(ctx context.Context, want weights) error {
	var got weights
	err := poll(ctx, d.o.timeout, "weights "+want.String(), func() (bool, error) {
		var err error
		got, err = d.weights(ctx)
		return maps.Equal(got, want), err
	})
	if err != nil {
		return fmt.Errorf("%w (they are %s)", err, got)
	}
	return nil
}

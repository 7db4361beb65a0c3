package deployer

import (
	"fmt"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// DeployVersion creates, inside tx, the releases that put build b in
// environment env, whatever env's ref rules say: one per app of b's project
// that lists env and per cluster of env, with that environment's release
// spec (so its stages and gates) or, for an app without one there, a
// rolling update. Each queues behind the active release of its target. It
// returns the releases created.
func DeployVersion(tx *store.Tx, cfg *config.Config, b Build, env string, now time.Time) ([]release.Release, error) {
	e, ok := cfg.Environment(env)
	if !ok {
		return nil, fmt.Errorf("%w: no environment %q in shipbot.yaml", ErrInvalid, env)
	}
	var out []release.Release
	for _, app := range cfg.Apps {
		if _, listed := app.Environments[env]; !listed || app.Project != b.Project {
			continue
		}
		spec, ok := app.ReleaseFor(env)
		if !ok {
			spec = release.Spec{Strategy: release.Rolling}
		}
		for _, cluster := range e.Clusters {
			r, err := stagedReleases{Config: cfg}.release(app, e, cluster, spec, b, now)
			if err != nil {
				return nil, err
			}
			r, _, err = release.Enqueue(tx, r, release.OnNewerQueue, now)
			if err != nil {
				return nil, fmt.Errorf("release %s %s to %s on %s: %w", app.Name, r.To.Name, env, cluster, err)
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no app of %s deploys to %s", ErrInvalid, b.Project, env)
	}
	return out, nil
}

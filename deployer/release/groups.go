package release

import (
	"context"
	"fmt"
)

// groups runs each version as its own Deployment, app-<version>, behind the
// one Service that selects the app's pods, and shifts replicas: at p % To
// has ceil(p·N/100) of the N replicas and From the rest. To grows first and
// From shrinks only as far as To's available pods allow, so availability
// never drops below the release's minimum.
type groups struct{ w *workloads }

var _ Driver = (*groups)(nil)

// split is the replicas each version has at percent.
func split(r *Release, percent int) (to, from int32) {
	to = int32((int(r.Replicas)*percent + 99) / 100)
	if r.From.IsZero() {
		return r.Replicas, 0
	}
	return to, r.Replicas - to
}

// Ensure applies the Service and To's Deployment, keeping the size To has
// now: only SetTarget changes it.
func (g *groups) Ensure(ctx context.Context, r *Release) error {
	if err := g.w.applyShared(ctx, r, ""); err != nil {
		return err
	}
	s, err := g.w.state(ctx, r, versionName(r, r.To))
	if err != nil {
		return err
	}
	size, _ := split(r, r.Percent)
	if s.found {
		size = max(size, s.spec)
	}
	return g.w.applyVersion(ctx, r, r.To, size)
}

// SetTarget grows To to its share, then shrinks From by as many pods as To
// has available beyond the minimum.
func (g *groups) SetTarget(ctx context.Context, r *Release, percent int) error {
	wantTo, wantFrom := split(r, percent)
	to, err := g.w.state(ctx, r, versionName(r, r.To))
	if err != nil {
		return err
	}
	if !to.found || to.spec < wantTo {
		if err := g.w.applyVersion(ctx, r, r.To, wantTo); err != nil {
			return err
		}
		return nil // To's new pods are not available yet
	}
	if r.From.IsZero() {
		return nil
	}
	from, err := g.w.state(ctx, r, versionName(r, r.From))
	if err != nil {
		return err
	}
	keep := max(wantFrom, r.MinAvailable-to.available, 0)
	if keep < from.spec {
		return g.w.scale(ctx, r, versionName(r, r.From), keep)
	}
	return nil
}

// Ready reports both versions at their share, To's pods available and
// From's surplus pods gone.
func (g *groups) Ready(ctx context.Context, r *Release, percent int) (Readiness, error) {
	wantTo, wantFrom := split(r, percent)
	to, err := g.w.state(ctx, r, versionName(r, r.To))
	if err != nil || !to.done || to.spec < wantTo {
		return readiness(to), err
	}
	if r.From.IsZero() {
		return Readiness{Done: true}, nil
	}
	from, err := g.w.state(ctx, r, versionName(r, r.From))
	if err != nil {
		return Readiness{}, err
	}
	if from.spec > wantFrom || from.pods > wantFrom {
		return Readiness{Waiting: fmt.Sprintf("%s: %d pods, want %d", from.name, from.pods, wantFrom)}, nil
	}
	return Readiness{Done: true}, nil
}

// Finalize leaves To alone at full size.
func (g *groups) Finalize(ctx context.Context, r *Release) (bool, error) {
	return g.w.settle(ctx, r, versionName(r, r.To), g.w.goneNow(r, r.From))
}

// Rollback brings From back to full size, then scales To to 0.
func (g *groups) Rollback(ctx context.Context, r *Release) (bool, error) {
	return g.w.settle(ctx, r, versionName(r, r.From), versionName(r, r.To))
}

// ScaleDown scales gone to 0. Groups defers no scale-down: its last
// stage shrinks From as it grows To.
func (g *groups) ScaleDown(ctx context.Context, r *Release, gone, _ Revision) (bool, error) {
	return g.w.drainRev(ctx, r, gone)
}

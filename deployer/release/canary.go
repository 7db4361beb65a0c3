package release

import (
	"context"
	"fmt"
)

// canary runs each version as its own Deployment, app-<version>, behind the
// app's Service (To at full size, or sized by its weight with
// matchTraffic: canaryscale.go), and moves route weights between them with
// its router: Istio (a DestinationRule subset per version, shipbot's routes
// in the VirtualService split by weight) or the Gateway API (a Service per
// version, shipbot's rules in the HTTPRoute split by backendRef weight).
type canary struct {
	w      *workloads
	router func(r *Release) trafficRouter
}

var _ Driver = (*canary)(nil)

// Ensure applies the Service and the objects To renders beside it, a
// subset per version, and adopts the VirtualService at the current weight;
// then, last, To's Deployment. To is at full size; with matchTraffic it
// keeps the size it has, and is created at the stage's: only the
// stepper's scale action changes it.
func (c *canary) Ensure(ctx context.Context, r *Release) error {
	// The routes are split by version, To at its current weight (0 at the
	// start), before To has a pod: a write refused after To's Deployment
	// would otherwise leave its pods taking a share of the requests
	// through the Service's unsplit route.
	if err := c.w.applyShared(ctx, r, ""); err != nil {
		return err
	}
	if err := c.router(r).backends(ctx, r.From, r.To); err != nil {
		return err
	}
	if err := c.router(r).ensure(ctx); err != nil {
		return err
	}
	size := r.Replicas
	if r.matchesTraffic() {
		s, err := c.w.state(ctx, r, versionName(r, r.To))
		if err != nil {
			return err
		}
		size = canaryPods(r, r.Target())
		if s.found {
			size = s.spec
		}
	}
	return c.w.applyVersion(ctx, r, r.To, size)
}

// SetTarget moves the weight, and sets the stage's header route and
// mirror, only once To has the pods the weight needs, all available: no
// request goes to a version that cannot serve it.
func (c *canary) SetTarget(ctx context.Context, r *Release, percent int) error {
	s, err := c.w.state(ctx, r, versionName(r, r.To))
	if err != nil || !s.done || s.spec < canaryPods(r, percent) {
		return err
	}
	return c.router(r).steer(ctx, r.stageRouting(percent))
}

// Ready reports To's pods available and the routes as the stage wants them.
func (c *canary) Ready(ctx context.Context, r *Release, percent int) (Readiness, error) {
	s, err := c.w.state(ctx, r, versionName(r, r.To))
	if err != nil || !s.done {
		return readiness(s), err
	}
	got, err := c.router(r).current(ctx)
	if err != nil {
		return Readiness{}, err
	}
	if want := r.stageRouting(percent); !got.equal(want) {
		return Readiness{Waiting: fmt.Sprintf("routes at %s, want %s", got, want), Retry: true}, nil
	}
	return Readiness{Done: true}, nil
}

// Finalize sends everything to To, scales From to 0 and, once its pods are
// gone, gives the VirtualService back its original routes: the Service then
// reaches To's pods only. While a version is in its scale-down delay, the
// original routes would reach its pods too, so they stay split, all on To,
// until the last scale-down (ScaleDown).
func (c *canary) Finalize(ctx context.Context, r *Release) (bool, error) {
	return c.settle(ctx, r, r.To, r.From)
}

// Rollback scales From back up if needed, sends everything to it, scales To
// to 0 and restores the original routes; with a delay, as Finalize.
func (c *canary) Rollback(ctx context.Context, r *Release) (bool, error) {
	return c.settle(ctx, r, r.From, r.To)
}

// settle leaves keep as the only version: keep at full size and available,
// all traffic on it, gone scaled to 0, original routes and one subset.
func (c *canary) settle(ctx context.Context, r *Release, keep, gone Revision) (bool, error) {
	if err := c.w.scaleUp(ctx, r, versionName(r, keep), r.Replicas); err != nil {
		return false, err
	}
	s, err := c.w.state(ctx, r, versionName(r, keep))
	if err != nil || !s.done {
		return false, err
	}
	percent := 0
	if keep == r.To {
		percent = 100
	}
	// Header routes and mirrors end with the stages: only the weight stays.
	if err := c.router(r).steer(ctx, routing{weight: percent}); err != nil {
		return false, err
	}
	if len(c.w.spare) == 0 {
		return c.ScaleDown(ctx, r, gone, keep)
	}
	// Proxies apply the weight when they get to it: gone, if it is
	// spare, keeps its pods and its subset, routed nothing.
	if name := c.w.goneNow(r, gone); name != "" {
		if done, err := c.w.drain(ctx, r, name); err != nil || !done {
			return false, err
		}
	}
	return true, c.w.scaleStrays(ctx, r, versionName(r, keep))
}

// ScaleDown scales gone to 0 and, with serving set and once gone's pods
// are gone, restores the original routes and leaves serving's subset only.
func (c *canary) ScaleDown(ctx context.Context, r *Release, gone, serving Revision) (bool, error) {
	if done, err := c.w.drainRev(ctx, r, gone); err != nil || !done || serving.IsZero() {
		return done, err
	}
	if err := c.router(r).restore(ctx); err != nil {
		return false, err
	}
	if err := c.router(r).backends(ctx, serving); err != nil {
		return false, err
	}
	return true, c.w.scaleStrays(ctx, r, versionName(r, serving))
}

package release

import "context"

// rolling applies To as the app's single Deployment, under its own name,
// and lets the Deployment's own rolling update replace the pods, in one
// stage. Rollback applies From the same way.
type rolling struct{ w *workloads }

var _ Driver = (*rolling)(nil)

// Ensure applies the Service, selecting every pod of the app.
func (d *rolling) Ensure(ctx context.Context, r *Release) error {
	return d.w.applyShared(ctx, r, "")
}

// SetTarget applies To's Deployment; there is no partial target.
func (d *rolling) SetTarget(ctx context.Context, r *Release, _ int) error {
	return d.w.applyPlain(ctx, r, r.To)
}

// Ready reports the rolling update done.
func (d *rolling) Ready(ctx context.Context, r *Release, _ int) (Readiness, error) {
	s, err := d.w.state(ctx, r, r.workloadName())
	return readiness(s), err
}

// Finalize has nothing left to do: the rolling update removed From's pods.
func (d *rolling) Finalize(context.Context, *Release) (bool, error) { return true, nil }

// ScaleDown has nothing to do: there is one Deployment.
func (d *rolling) ScaleDown(context.Context, *Release, Revision, Revision) (bool, error) {
	return true, nil
}

// Rollback applies From's image and waits for that rolling update.
func (d *rolling) Rollback(ctx context.Context, r *Release) (bool, error) {
	if err := d.w.applyPlain(ctx, r, r.From); err != nil {
		return false, err
	}
	s, err := d.w.state(ctx, r, r.workloadName())
	return s.done, err
}

package release

import (
	"context"
	"fmt"

	"github.com/shipbot/shipbot/deployer/store"
)

// RestoreRequest asks to put the last good version back in every target
// of a project (in one environment, when set), as a plan a person saw and
// confirmed by its digest.
type RestoreRequest struct {
	Project     string
	Environment string // all when empty
	Digest      string // PlanDigest of the plan the person confirmed
	Actor       string
	Surface     Surface
	Reason      string // why, kept in the history of every release it touches
}

// RestoreLastGood applies the plan PlanLastGood makes now, if it is the
// one confirmed: an active release that moves from the last good version
// rolls back; elsewhere a release of that version in one stage replaces
// what serves, with the parameters it last succeeded with. It releases
// through freezes (going back is how a freeze's incident ends) but not
// through someone else's lock. It returns the releases it touched.
func (e *Stepper) RestoreLastGood(ctx context.Context, q RestoreRequest) ([]Release, error) {
	plan, err := e.PlanLastGood(ctx, q.Project, q.Environment)
	if err != nil {
		return nil, err
	}
	switch now := PlanDigest(plan); {
	case len(plan) == 0:
		return nil, fmt.Errorf("%w: %s has no release that succeeded, so no good version to go back to", ErrConflict, q.Project)
	case now != q.Digest:
		return nil, fmt.Errorf("%w: the plan changed since it was shown (it is %s now, not %s); look at it again", ErrConflict, now, q.Digest)
	}
	why := "back to last good"
	if q.Reason != "" {
		why += ": " + q.Reason
	}
	var out []Release
	for _, rs := range plan {
		r, err := e.restore(ctx, rs, q, why)
		if err != nil {
			return out, fmt.Errorf("%s in %s on %s: %w", rs.App, rs.Environment, rs.Cluster, err)
		}
		if r.ID != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// restore carries out one target's path.
func (e *Stepper) restore(ctx context.Context, rs Restore, q RestoreRequest, why string) (Release, error) {
	in := Intent{Actor: q.Actor, Surface: q.Surface, At: e.clock.Now(), Comment: fmt.Sprintf("%s %s", why, rs.Good.Name)}
	switch rs.Path {
	case PathNone:
		return Release{}, nil
	case PathRollback:
		in.Kind = IntentRollback
		return e.Record(ctx, rs.Active, in)
	}
	if err := e.lockAllowsEnv(ctx, rs.Environment, in); err != nil {
		return Release{}, err
	}
	if rs.Active != "" {
		in.Kind = IntentAbort
		if _, err := e.Record(ctx, rs.Active, in); err != nil {
			return Release{}, err
		}
	}
	good, err := e.Get(ctx, rs.GoodRelease)
	if err != nil {
		return Release{}, err
	}
	return e.createRestore(good, in)
}

// createRestore queues a one-stage release of good's version, rendered with
// good's parameters, behind what is active on the target.
func (e *Stepper) createRestore(good Release, in Intent) (Release, error) {
	r := Release{
		App: good.App, Project: good.Project, Environment: good.Environment, Cluster: good.Cluster, Namespace: good.Namespace,
		To: good.To, ResolveFrom: true, Strategy: good.Strategy, Stages: []Stage{{Target: 100, Continue: Auto}},
		Params: good.Params, Replicas: good.Replicas, MinAvailable: good.MinAvailable, ProgressDeadline: good.ProgressDeadline,
		VirtualService: good.VirtualService, RetireAfter: good.RetireAfter, ScaleDownDelay: good.ScaleDownDelay,
		RevisionHistory: good.RevisionHistory, TriggeredBy: in.Actor, PipelineID: good.PipelineID, JobID: good.JobID,
		JobName: good.JobName, WebURL: good.WebURL,
		Override: &Override{By: in.Actor, Via: in.Surface, Reason: in.Comment, At: in.At},
	}
	r, err := Prepare(r, in.At)
	if err != nil {
		return Release{}, err
	}
	r.History = append(r.History, Entry{At: in.At, Actor: in.Actor, Surface: in.Surface, Kind: EntryIntent, Phase: Pending,
		Message: fmt.Sprintf("%s (as release %s left it)", in.Comment, good.ID)})
	_, err = e.store.Update(func(tx *store.Tx) error {
		r, _, err = Enqueue(tx, r, OnNewerQueue, in.At)
		return err
	})
	return r, err
}

// lockAllowsEnv refuses in on env when someone else holds its lock.
func (e *Stepper) lockAllowsEnv(ctx context.Context, env string, in Intent) error {
	l, locked, err := e.EnvironmentLock(ctx, env)
	switch {
	case err != nil:
		return err
	case locked && !sameUser(l.Holder)(in.Actor):
		return fmt.Errorf("%w: %s; only %s can act on its releases until it is unlocked", ErrConflict, l, l.Holder)
	}
	return nil
}

package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
)

// EntryRetired is the kind of history entry that says what became of the
// Deployment of the version a release left at 0 replicas.
const EntryRetired EntryKind = "retired"

// DefaultRetireAfter is how long a replaced version's Deployment stays at 0
// replicas before it is deleted: long enough to look at it, or to scale it
// back up by hand, after a release.
const DefaultRetireAfter = time.Hour

// retireAfter is r's delay, defaulted.
func (r Release) retireAfter() time.Duration {
	if r.RetireAfter > 0 {
		return r.RetireAfter
	}
	return DefaultRetireAfter
}

// leftAtZero is the version an ended release scaled to 0: From after a
// success, To after a rollback. Rolling releases have one Deployment, and
// aborted or failed ones may have left both versions running.
func (r Release) leftAtZero() (Revision, bool) {
	if r.Strategy == Rolling {
		return Revision{}, false
	}
	switch r.Phase {
	case Succeeded:
		return r.From, !r.From.IsZero() && r.From.Name != r.To.Name
	case RolledBack:
		return r.To, !r.To.IsZero() && r.To.Name != r.From.Name
	}
	return Revision{}, false
}

func (r Release) retired() bool {
	return slices.ContainsFunc(r.History, func(e Entry) bool { return e.Kind == EntryRetired })
}

// target is where releases of an app run one after another.
type target struct{ app, env, cluster, namespace string }

func targetOf(r Release) target { return target{r.App, r.Environment, r.Cluster, r.Namespace} }

// Retire deletes the Deployments that ended releases left at 0 replicas once
// their delay has passed, and notes each in that release's history, so it is
// done once. A version still in use is kept (keptVersions): one an active
// release moves from or to, the one the target's latest ended release left
// serving, or one still in its scale-down delay. A Deployment someone scaled
// up again since is left alone. It returns when the next one is due, zero
// when none is.
func (e *Stepper) Retire(ctx context.Context) (time.Time, error) {
	all, err := e.all(ctx)
	if err != nil {
		return time.Time{}, err
	}
	inUse := keptVersions(all)

	now := e.clock.Now()
	var next time.Time
	var errs []error
	for _, r := range all {
		gone, ok := r.leftAtZero()
		if !ok || r.retired() || slices.Contains(inUse[targetOf(r)], gone.Name) {
			continue
		}
		if due := r.atZeroSince().Add(r.retireAfter()); now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		msg, err := e.retire(ctx, r, gone)
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: retire %s: %w", r.ID, gone.Name, err))
			continue
		}
		err = e.store.UpdateRelease(r.ID, func(stored []byte) ([]byte, error) {
			cur, err := e.decode(stored)
			if err != nil {
				return nil, err
			}
			cur.History = append(cur.History, Entry{At: now, Actor: EngineActor, Kind: EntryRetired, Phase: cur.Phase, Stage: cur.Stage, Message: msg})
			return json.Marshal(cur)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: note retirement: %w", r.ID, err))
			continue
		}
		e.log.Info("release retired old version", "release", r.ID, "app", r.App, "env", r.Environment, "cluster", r.Cluster, "detail", msg)
	}
	return next, errors.Join(errs...)
}

// atZeroSince is when the release left its old version at 0 replicas: as
// it ended, or at the end of its scale-down delay.
func (r Release) atZeroSince() time.Time {
	if r.Drain != nil && r.Drain.Done.After(r.Updated) {
		return r.Drain.Done
	}
	return r.Updated
}

// retire deletes gone's Deployment if it is still shipbot's and still at 0
// replicas, and says what it did.
func (e *Stepper) retire(ctx context.Context, r Release, gone Revision) (string, error) {
	c, err := e.clusters.Cluster(ctx, r.Cluster)
	if err != nil {
		return "", err
	}
	name := versionName(&r, gone)
	w := &workloads{kube: c.Kube, view: e.view(r.Cluster, c, r.Namespace)}
	d, err := w.view.deployment(ctx, name)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("Deployment %s was already gone", name), nil
	case err != nil:
		return "", err
	}
	if _, ours := d.Annotations[AnnotationRelease]; !ours {
		return fmt.Sprintf("kept Deployment %s: shipbot did not apply it", name), nil
	}
	if n := ptr.Deref(d.Spec.Replicas, 1); n != 0 {
		return fmt.Sprintf("kept Deployment %s: someone scaled it to %d since", name, n), nil
	}
	deleted, err := w.deleteAsRead(ctx, &r, d)
	if err != nil {
		return "", err
	}
	if !deleted {
		return fmt.Sprintf("kept Deployment %s: someone scaled it up or replaced it since", name), nil
	}
	return fmt.Sprintf("deleted Deployment %s, at 0 replicas for %s", name, r.retireAfter()), nil
}

// RunRetire calls Retire until ctx ends: when the next retirement is due, and
// at least every check.
func (e *Stepper) RunRetire(ctx context.Context, check time.Duration) {
	e.every(ctx, check, "retire old versions", e.Retire)
}

// every runs f until ctx ends: when the time it returns has come, and at
// least every check.
func (e *Stepper) every(ctx context.Context, check time.Duration, what string, f func(context.Context) (time.Time, error)) {
	if check <= 0 {
		check = time.Minute
	}
	for {
		next, err := f(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Warn(what, "err", err)
		}
		wait := check
		if !next.IsZero() {
			if d := next.Sub(e.clock.Now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

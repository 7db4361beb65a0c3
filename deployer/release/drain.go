package release

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// EntryCleanup is the kind of history entry that says what an ended
// release did to old versions: the scale-down after its delay, and the
// Deployments it deleted beyond the revision history.
const EntryCleanup EntryKind = "cleanup"

// DefaultScaleDownDelay is how long the version a release moved traffic off
// keeps its pods once the release is done, as in Argo Rollouts: a mesh
// applies a route change asynchronously, so for a moment proxies still
// send requests by the old weights, and those must find pods.
const DefaultScaleDownDelay = 30 * time.Second

// DefaultRevisionHistory is how many old versions' Deployments, at 0
// replicas, are kept per app, environment and cluster, like a
// Deployment's revisionHistoryLimit keeps ReplicaSets.
const DefaultRevisionHistory int32 = 3

// Drain is the scale-down an ended release owes the version it moved
// traffic off. It is stored with the release, so that whichever process
// steps the release once Due has passed does it, and does it once.
type Drain struct {
	Deployment string    `json:"deployment"`    // e.g. web-v1-0-0
	Due        time.Time `json:"due"`           // when traffic moved off, plus the scale-down delay
	Done       time.Time `json:"done,omitzero"` // when it was scaled down, or kept because a release uses it
}

func (r Release) scaleDownDelay() time.Duration {
	if r.ScaleDownDelay != nil {
		return *r.ScaleDownDelay
	}
	return DefaultScaleDownDelay
}

func (r Release) revisionHistory() int32 {
	if r.RevisionHistory != nil {
		return *r.RevisionHistory
	}
	return DefaultRevisionHistory
}

// defersScaleDown reports whether the version the release moves traffic
// off keeps its pods through the scale-down delay. Only routing moves
// traffic without moving pods: canary weights and the blue-green selector.
// Groups shrinks the old version as it shifts replicas (endpoints follow
// pods, which drain through their own termination grace period), and
// rolling has a single Deployment.
func (r Release) defersScaleDown() bool {
	return (r.Strategy == Canary || r.Strategy == BlueGreen) && r.scaleDownDelay() > 0
}

// draining reports whether the release has ended and still owes a scale-down.
func (r Release) draining() bool {
	return (r.Phase == Succeeded || r.Phase == RolledBack) && r.Drain != nil && r.Drain.Done.IsZero()
}

// planDrain decides, as Finalize or Rollback is about to leave gone,
// whether gone keeps its pods through the delay: it does if the release
// defers its scale-down and gone has pods (not, say, after a rollback
// before its Deployment was applied). The release records the Drain as it
// ends (end).
func (s *stepper) planDrain(ctx context.Context, gone Revision) error {
	r := s.r
	s.deferred = ""
	if gone.IsZero() || !r.defersScaleDown() {
		return nil
	}
	name := versionName(r, gone)
	st, err := s.w.state(ctx, r, name)
	if err != nil || !st.found || st.spec == 0 {
		return err
	}
	s.deferred = name
	s.w.spare[name] = true
	return nil
}

// drain does an ended release's scale-down once it is due: gone to 0 and,
// if it is the last one owed, the routing made plain. A version another
// release uses again is kept. Then the old Deployments
// beyond the revision history go. The entry and Done are saved together,
// so a restart repeats only the idempotent cluster calls.
func (s *stepper) drain(ctx context.Context) (*Result, error) {
	r := s.r
	if !r.draining() {
		return s.wait(0), nil
	}
	now := s.e.clock.Now()
	if now.Before(r.Drain.Due) {
		return s.wait(r.Drain.Due.Sub(now)), nil
	}
	all, err := s.e.all(ctx)
	if err != nil {
		return nil, err
	}
	gone, _ := r.leftAtZero()
	msg := fmt.Sprintf("scaled down Deployment %s after %s", r.Drain.Deployment, r.scaleDownDelay())
	if by := usedBy(all, targetOf(*r), gone.Name, r.ID); by != "" {
		msg = fmt.Sprintf("kept Deployment %s running: release %s uses it again", r.Drain.Deployment, by)
		gone = Revision{}
	}
	done, err := s.d.ScaleDown(ctx, r, gone, lastToScaleDown(all, *r))
	if permanent(err) && ctx.Err() == nil {
		msg, err, done = fmt.Sprintf("gave up scaling down Deployment %s: %v", r.Drain.Deployment, err), nil, true
	}
	if err != nil || !done {
		return s.waitPods(), err
	}
	r.Drain.Done = now
	r.note(EntryCleanup, msg)
	if err := s.save(ctx, "scale down"); err != nil {
		return nil, err
	}
	s.prune(ctx)
	return s.wait(0), nil
}

// all reads every release, oldest first.
func (e *Stepper) all(ctx context.Context) ([]Release, error) {
	var out []Release
	err := e.store.Releases(func(_ string, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := e.decode(raw)
		out = append(out, r)
		return err
	})
	return out, err
}

// Draining lists the ended releases that still owe a scale-down: after a
// restart, these are to be stepped too, when their delay has passed.
func (e *Stepper) Draining(ctx context.Context) ([]Release, error) {
	all, err := e.all(ctx)
	return slices.DeleteFunc(all, func(r Release) bool { return !r.draining() }), err
}

// usedBy names the release other than except that needs version of t to
// keep running: one active that moves from or to it, or the latest ended,
// which left it serving. It is "" when none does.
func usedBy(all []Release, t target, version, except string) string {
	if version == "" {
		return ""
	}
	for _, r := range all {
		if r.ID != except && targetOf(r) == t && !r.Phase.Terminal() && (r.From.Name == version || r.To.Name == version) {
			return r.ID
		}
	}
	if l := latestEnded(all, t); l != nil && l.ID != except && l.Left().Name == version {
		return l.ID
	}
	return ""
}

// latestEnded is the ended release of t that last acted, the one whose
// end decides what serves (see Serving); ids sort by creation, and the
// releases of one target run one after another.
func latestEnded(all []Release, t target) *Release {
	var last *Release
	for i, r := range all {
		if targetOf(r) == t && r.Phase.Terminal() && r.acted() {
			last = &all[i]
		}
	}
	return last
}

// lastToScaleDown is the version r's scale-down leaves the routing plain
// for: the one the target's latest ended release left serving alone, once
// no release of the target has started since and no other is still in
// its scale-down delay; zero otherwise. A release that starts, or the
// last scale-down, makes the routing its own.
func lastToScaleDown(all []Release, r Release) Revision {
	t := targetOf(r)
	for _, o := range all {
		if targetOf(o) == t && o.ID != r.ID && (o.draining() || (!o.Phase.Terminal() && o.Phase != Pending)) {
			return Revision{}
		}
	}
	l := latestEnded(all, t)
	if l == nil || (l.Phase != Succeeded && l.Phase != RolledBack) {
		return Revision{} // an aborted or failed release left it as it was
	}
	return l.Left()
}

// keptVersions lists, per target, the versions whose Deployments must stay:
// those an active release moves from or to, the one the latest ended
// release left serving, and those still in their scale-down delay.
func keptVersions(all []Release) map[target][]string {
	kept := map[target][]string{}
	for _, r := range all {
		t := targetOf(r)
		if _, seen := kept[t]; !seen {
			kept[t] = nil
			if l := latestEnded(all, t); l != nil {
				kept[t] = append(kept[t], l.Left().Name)
			}
		}
		switch {
		case !r.Phase.Terminal():
			kept[t] = append(kept[t], r.From.Name, r.To.Name)
		case r.draining():
			gone, _ := r.leftAtZero()
			kept[t] = append(kept[t], gone.Name)
		}
	}
	return kept
}

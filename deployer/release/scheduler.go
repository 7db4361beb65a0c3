package release

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/shipbot/shipbot/deployer/store"
)

// Scheduler steps the releases in the store: it resumes the active ones
// at start, steps a release again when it asked to be, when an intent is
// recorded on it and when one it waits for ends. Ended releases that still
// owe a scale-down are stepped too, when it is due. It implements what the
// surfaces need (ops.Releases) by recording intents and waking the
type Scheduler struct {
	Stepper *Stepper
	Log     *slog.Logger
	// Retry is how long to wait after a step fails; 5s when 0.
	Retry time.Duration

	mu      sync.Mutex
	ctx     context.Context
	running map[string]bool // a goroutine is stepping it
	again   map[string]bool // step once more when the current step returns
	timers  map[string]*time.Timer
	waits   map[spaceKey]map[string]Waits // releases waiting on Deployments, by namespace
	// changes counts the Deployment changes seen per namespace, so that a
	// step can tell whether one came while it ran: it was not waiting yet,
	// so nothing would wake it for that change.
	changes map[spaceKey]uint64
	wg      sync.WaitGroup
	rescan  chan struct{}
}

// Run steps releases until ctx ends, then waits for the steps in hand.
func (rr *Scheduler) Run(ctx context.Context) error {
	rr.mu.Lock()
	rr.ctx = ctx
	rr.running, rr.again, rr.timers = map[string]bool{}, map[string]bool{}, map[string]*time.Timer{}
	rr.waits, rr.changes = map[spaceKey]map[string]Waits{}, map[spaceKey]uint64{}
	if rr.rescan == nil {
		rr.rescan = make(chan struct{}, 1)
	}
	rr.mu.Unlock()
	rr.Stepper.watch(ctx, rr.changed)
	// Events a crash left in the outbox go out now; later ones as saved.
	rr.wg.Add(1)
	go func() { defer rr.wg.Done(); rr.Stepper.RunOutbox(ctx) }()
	defer func() {
		rr.mu.Lock()
		for _, t := range rr.timers {
			t.Stop()
		}
		rr.mu.Unlock()
		rr.wg.Wait()
	}()
	for {
		rr.scan(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-rr.rescan:
		}
	}
}

// Wake looks for releases to step: new ones, and those waiting on others.
func (rr *Scheduler) Wake() {
	rr.mu.Lock()
	if rr.rescan == nil {
		rr.rescan = make(chan struct{}, 1)
	}
	ch := rr.rescan
	rr.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (rr *Scheduler) scan(ctx context.Context) {
	active, err := rr.Stepper.Active(ctx)
	if err != nil {
		rr.log().Error("list active releases", "err", err)
		return
	}
	for _, r := range active {
		rr.Kick(r.ID)
	}
	unanswered, err := rr.Stepper.Unanswered(ctx)
	if err != nil {
		rr.log().Error("list ended releases with unanswered intents", "err", err)
		return
	}
	for _, r := range unanswered {
		rr.Kick(r.ID)
	}
	draining, err := rr.Stepper.Draining(ctx)
	if err != nil {
		rr.log().Error("list releases that owe a scale-down", "err", err)
		return
	}
	for _, r := range draining {
		rr.kickIdle(r.ID)
	}
}

// kickIdle steps release id now unless it is being stepped or waits on a
// timer already: an ended release's scale-down has its own time.
func (rr *Scheduler) kickIdle(id string) {
	rr.mu.Lock()
	idle := !rr.running[id] && rr.timers[id] == nil
	rr.mu.Unlock()
	if idle {
		rr.Kick(id)
	}
}

// Kick steps release id now, or once more after the step in hand.
func (rr *Scheduler) Kick(id string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.ctx == nil || rr.ctx.Err() != nil {
		return
	}
	if t := rr.timers[id]; t != nil {
		t.Stop()
		delete(rr.timers, id)
	}
	for _, ids := range rr.waits {
		delete(ids, id)
	}
	if rr.running[id] {
		rr.again[id] = true
		return
	}
	rr.running[id] = true
	rr.wg.Add(1)
	go rr.loop(rr.ctx, id)
}

// loop steps one release until it waits, then arms what wakes it next.
func (rr *Scheduler) loop(ctx context.Context, id string) {
	defer rr.wg.Done()
	for {
		rr.mu.Lock()
		seen := maps.Clone(rr.changes)
		rr.mu.Unlock()
		res, err := rr.Stepper.Step(ctx, id)
		var after time.Duration
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, store.ErrNotFound):
			rr.log().Warn("release vanished", "release", id)
		case err != nil:
			after = rr.retry()
			rr.log().Error("release step failed; will retry", "release", id, "retry", after, "err", err)
			// The history says why the release waits, not only the log.
			if nerr := rr.Stepper.noteRetry(id, err, after); nerr != nil {
				rr.log().Error("note a failed step in the release's history", "release", id, "err", nerr)
			}
		case res.Done:
			rr.Wake()                // those queued behind it may start
			after = res.RequeueAfter // a scale-down it still owes
		default:
			after = res.RequeueAfter
		}
		rr.mu.Lock()
		if rr.again[id] && ctx.Err() == nil {
			delete(rr.again, id)
			rr.mu.Unlock()
			continue
		}
		if err == nil && res.Waits != nil && ctx.Err() == nil {
			if k := (spaceKey{res.Waits.Cluster, res.Waits.Namespace}); rr.changes[k] != seen[k] {
				// A Deployment of the namespace changed while the step read
				// it: look again now rather than at the next poll.
				rr.mu.Unlock()
				continue
			}
		}
		delete(rr.running, id)
		if after > 0 && ctx.Err() == nil {
			rr.timers[id] = time.AfterFunc(after, func() { rr.Kick(id) })
			if err == nil && res.Waits != nil {
				rr.await(id, *res.Waits)
			}
		}
		rr.mu.Unlock()
		return
	}
}

// await steps release id as soon as a Deployment it waits on changes,
// instead of at its next poll, as a controller's informer would. Called
// with rr.mu held.
func (rr *Scheduler) await(id string, w Waits) {
	k := spaceKey{w.Cluster, w.Namespace}
	if rr.waits[k] == nil {
		rr.waits[k] = map[string]Waits{}
	}
	rr.waits[k][id] = w
}

// changed steps the releases waiting on a Deployment that changed.
func (rr *Scheduler) changed(c Change) {
	k := spaceKey{c.Cluster, c.Namespace}
	d := c.Deployment
	var due []string
	rr.mu.Lock()
	rr.changes[k]++
	for id, w := range rr.waits[k] {
		if d.Labels[LabelApp] == w.App || d.Name == w.Workload {
			due = append(due, id)
			delete(rr.waits[k], id)
		}
	}
	rr.mu.Unlock()
	for _, id := range due {
		rr.Kick(id)
	}
}

func (rr *Scheduler) retry() time.Duration {
	if rr.Retry > 0 {
		return rr.Retry
	}
	return 5 * time.Second
}

func (rr *Scheduler) log() *slog.Logger {
	if rr.Log == nil {
		return slog.Default()
	}
	return rr.Log
}

// List lists releases, newest first.
func (rr *Scheduler) List(ctx context.Context, f Filter) ([]Release, error) {
	return rr.Stepper.List(ctx, f)
}

// Get reads a
func (rr *Scheduler) Get(ctx context.Context, id string) (Release, error) {
	return rr.Stepper.Get(ctx, id)
}

// Record records an intent and steps the release at once.
func (rr *Scheduler) Record(ctx context.Context, id string, in Intent) (Release, error) {
	r, err := rr.Stepper.Record(ctx, id, in)
	if err == nil {
		rr.Kick(id)
	}
	return r, err
}

// Refused keeps a refused intent in the release's audit history.
func (rr *Scheduler) Refused(ctx context.Context, id string, f Refusal) (Release, error) {
	return rr.Stepper.Refused(ctx, id, f)
}

// Approved keeps one person's approval in the release's audit history and
// returns who has approved the same intent so far. It steps nothing: the
// intent is recorded, with Record, once enough people have approved.
func (rr *Scheduler) Approved(ctx context.Context, id string, a Approval) (Release, []string, error) {
	return rr.Stepper.Approved(ctx, id, a)
}

// LockEnvironment locks an environment (see Stepper.LockEnvironment).
func (rr *Scheduler) LockEnvironment(ctx context.Context, l Lock) (Lock, error) {
	return rr.Stepper.LockEnvironment(ctx, l)
}

// Unlock removes an environment's lock and wakes the releases it held.
func (rr *Scheduler) Unlock(ctx context.Context, env, by string, via Surface, force bool) (Lock, error) {
	l, err := rr.Stepper.Unlock(ctx, env, by, via, force)
	if err == nil {
		rr.Wake()
	}
	return l, err
}

// EnvironmentLock reads an environment's lock.
func (rr *Scheduler) EnvironmentLock(ctx context.Context, env string) (Lock, bool, error) {
	return rr.Stepper.EnvironmentLock(ctx, env)
}

// Locks lists every environment lock.
func (rr *Scheduler) Locks(ctx context.Context) ([]Lock, error) { return rr.Stepper.Locks(ctx) }

// PlanLastGood plans going back to the last good versions (see Stepper.PlanLastGood).
func (rr *Scheduler) PlanLastGood(ctx context.Context, project, env string) ([]Restore, error) {
	return rr.Stepper.PlanLastGood(ctx, project, env)
}

// RestoreLastGood applies a confirmed plan and steps what it touched.
func (rr *Scheduler) RestoreLastGood(ctx context.Context, q RestoreRequest) ([]Release, error) {
	out, err := rr.Stepper.RestoreLastGood(ctx, q)
	for _, r := range out {
		rr.Kick(r.ID)
	}
	rr.Wake()
	return out, err
}

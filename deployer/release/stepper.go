package release

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
)

// Clock tells the engine the time; tests inject one they move by hand.
type Clock interface{ Now() time.Time }

type systemClock struct{}

// Now is the wall clock.
func (systemClock) Now() time.Time { return time.Now() }

// Options are the Stepper's collaborators.
type Options struct {
	Store    *store.Store
	Clusters Clusters
	Renderer Renderer // renders each app's source; when nil, a release that renders fails
	Notifier Notifier // may be nil
	Freezes  Freezes  // when environments are frozen; none when nil
	// MRApprovals reads merge request approvals for mergeRequestApproval
	// gates; such a gate fails when nil.
	MRApprovals MergeRequestApprovals
	Clock       Clock        // the system clock when nil
	HTTP        *http.Client // for gates; http.DefaultClient when nil (each call has its own timeout)
	Log         *slog.Logger // slog.Default() when nil
	// Poll is how soon to step again while pods or routes are settling; 2s when 0.
	Poll time.Duration
}

// Stepper steps releases recorded in the store. It keeps no release state of
// its own: everything it knows is in the store, so any Stepper on the same
// file can take over.
type Stepper struct {
	store    *store.Store
	clusters Clusters
	render   Renderer
	notifier Notifier
	freezes  Freezes
	// mrApprovals reads GitLab's approvals for mergeRequestApproval gates.
	mrApprovals MergeRequestApprovals
	clock       Clock
	http        *http.Client
	log         *slog.Logger
	poll        time.Duration

	// outbox lets one Deliver at a time hand out events, in order.
	outbox sync.Mutex

	mu    sync.Mutex
	locks map[string]*sync.Mutex // one Step per release at a time
	// One Step per target at a time: an ended release's scale-down reads
	// which release owns the routing, and must not race the next release
	// starting to change it.
	targets map[target]*sync.Mutex

	// caches, once the Scheduler runs, serve reads of the objects
	// releases steer (cache.go); guarded by mu.
	caches *caches
	// namespaces holds "cluster/namespace" for each one a release has
	// made sure exists.
	namespaces sync.Map

	// afterAction, when set, runs after each action is persisted; tests use
	// it to stop an engine between two actions.
	afterAction func(r *Release, action string)
}

// NewStepper builds a Stepper.
func NewStepper(o Options) (*Stepper, error) {
	if o.Store == nil || o.Clusters == nil {
		return nil, fmt.Errorf("release engine: %w: a store and clusters are required", ErrInvalid)
	}
	e := &Stepper{
		store: o.Store, clusters: o.Clusters, render: o.Renderer, notifier: o.Notifier, freezes: o.Freezes, mrApprovals: o.MRApprovals,
		clock: o.Clock, http: o.HTTP, log: o.Log, poll: o.Poll,
		locks: map[string]*sync.Mutex{}, targets: map[target]*sync.Mutex{},
	}
	if e.render == nil {
		e.render = TemplateRenderer{}
	}
	if e.notifier == nil {
		e.notifier = NotifierFunc(func(context.Context, Event) error { return nil })
	}
	if e.clock == nil {
		e.clock = systemClock{}
	}
	if e.http == nil {
		e.http = http.DefaultClient
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.poll == 0 {
		e.poll = 2 * time.Second
	}
	return e, nil
}

// watch makes the engine read from informers until ctx ends, and tell
// changed about every Deployment that changes in a namespace it reads.
func (e *Stepper) watch(ctx context.Context, changed func(Change)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.caches = newCaches(ctx, changed)
}

// view reads the objects of one namespace of cluster c.
func (e *Stepper) view(cluster string, c *Cluster, ns string) *view {
	e.mu.Lock()
	cs := e.caches
	e.mu.Unlock()
	return newView(cs.space(cluster, c, ns), c, ns)
}

// ensureNamespace creates a release's namespace if it is missing, as a
// plain deploy does, once per namespace and process.
func (e *Stepper) ensureNamespace(ctx context.Context, c *kube.Client, ns string) error {
	key := c.Name + "/" + ns
	if _, done := e.namespaces.Load(key); done {
		return nil
	}
	if err := c.EnsureNamespace(ctx, ns, map[string]string{"app.kubernetes.io/managed-by": "shipbot"}); err != nil {
		return err
	}
	e.namespaces.Store(key, true)
	return nil
}

// Waits names the Deployments a release waits on: those of App, or named
// Workload, in one namespace of one cluster.
type Waits struct {
	Cluster, Namespace string
	App, Workload      string
}

// Result says what a Step left behind and when to step again.
type Result struct {
	Phase   Phase
	Summary string // Describe of the release after the step
	// RequeueAfter is when to step again. Zero with Done false means the
	// release waits for an intent: step it when one is recorded.
	RequeueAfter time.Duration
	Done         bool // the release has ended
	// Waits, when set, is the app whose Deployments the release waits on:
	// a Scheduler that watches them steps it as soon as one changes,
	// sooner than RequeueAfter.
	Waits *Waits
}

// Create validates and stores a new release in phase Pending. Only one
// release per app, environment and cluster may be active.
func (e *Stepper) Create(ctx context.Context, r Release) (Release, error) {
	if err := ctx.Err(); err != nil {
		return Release{}, err
	}
	r, err := Prepare(r, e.clock.Now())
	if err != nil {
		return Release{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkNoActive(ctx, r); err != nil {
		return Release{}, err
	}
	_, err = e.store.CreateRelease(func(id string) ([]byte, error) {
		r.ID = id
		return json.Marshal(r)
	})
	return r, err
}

func (e *Stepper) checkNoActive(ctx context.Context, r Release) error {
	active, err := e.Active(ctx)
	if err != nil {
		return err
	}
	for _, a := range active {
		if a.App == r.App && a.Environment == r.Environment && a.Cluster == r.Cluster {
			return fmt.Errorf("release of %s to %s on %s: %w: release %s is still %s", r.App, r.Environment, r.Cluster, ErrConflict, a.ID, a.Phase)
		}
	}
	return nil
}

// Get reads a release.
func (e *Stepper) Get(ctx context.Context, id string) (Release, error) {
	if err := ctx.Err(); err != nil {
		return Release{}, err
	}
	raw, err := e.store.Release(id)
	if err != nil {
		return Release{}, err
	}
	return e.decode(raw)
}

func (e *Stepper) decode(raw []byte) (Release, error) {
	var r Release
	if err := json.Unmarshal(raw, &r); err != nil {
		return Release{}, fmt.Errorf("decode release: %w", err)
	}
	r.clock = e.clock.Now
	return r, nil
}

// Active lists the releases that have not ended, oldest first: after a
// restart, these are the ones to step.
func (e *Stepper) Active(ctx context.Context) ([]Release, error) {
	all, err := e.all(ctx)
	return slices.DeleteFunc(all, func(r Release) bool { return r.Phase.Terminal() }), err
}

// Unanswered lists ended releases holding an intent no step has answered:
// one recorded while the step that ended the release was in hand. Their
// next Step answers it (the release has ended).
func (e *Stepper) Unanswered(ctx context.Context) ([]Release, error) {
	all, err := e.all(ctx)
	return slices.DeleteFunc(all, func(r Release) bool { return !r.Phase.Terminal() || len(r.pendingIntents()) == 0 }), err
}

// Record validates an intent against the stored release and appends it in
// one transaction. It is what every surface calls, after its authorization
// check; the engine acts on the intent at its next Step.
func (e *Stepper) Record(ctx context.Context, id string, in Intent) (Release, error) {
	if err := ctx.Err(); err != nil {
		return Release{}, err
	}
	if in.At.IsZero() {
		in.At = e.clock.Now()
	}
	// The lock is read first: bbolt wants no read inside the write below.
	if err := e.lockAllows(ctx, id, in); err != nil {
		return Release{}, err
	}
	var out Release
	err := e.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		r, err := e.decode(stored)
		if err != nil {
			return nil, err
		}
		if err := r.Record(in); err != nil {
			return nil, err
		}
		out = r
		return json.Marshal(r)
	})
	return out, err
}

// save writes r, first taking in any intent or refusal recorded since r was
// read, so that a step never loses one recorded while it ran. An ended
// release keeps the time it ended as Updated, through its scale-down. The
// events emitted since the last save go to the outbox in the same
// transaction; if the save fails they are dropped with the change.
func (e *Stepper) save(r *Release) error {
	if !r.Phase.Terminal() {
		r.Updated = e.clock.Now()
	}
	events := r.announce
	r.announce = nil
	_, err := e.store.Update(func(tx *store.Tx) error {
		err := tx.UpdateRelease(r.ID, func(stored []byte) ([]byte, error) {
			cur, err := e.decode(stored)
			if err != nil {
				return nil, err
			}
			r.mergeIntents(cur.Intents)
			r.mergeRefusals(cur.History)
			return json.Marshal(r)
		})
		if err != nil {
			return err
		}
		return announce(tx, events)
	})
	return err
}

func (e *Stepper) lock(id string) func() { return lockIn(&e.mu, e.locks, id) }

// lockIn locks the mutex of key in locks, making it on first use.
func lockIn[K comparable](mu *sync.Mutex, locks map[K]*sync.Mutex, key K) func() {
	mu.Lock()
	l := locks[key]
	if l == nil {
		l = &sync.Mutex{}
		locks[key] = l
	}
	mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Step moves a release as far as it can go now: it acts on recorded
// intents, then runs its phase's pipeline, persisting after every action,
// and returns when the release must wait (for pods, a gate, an intent) or
// has ended. An ended release that owes its old version a scale-down
// does it once due, and until then asks to be stepped again then. After a
// crash, the next Step resumes from what was persisted; every action is
// idempotent, so repeating the last one does no harm.
func (e *Stepper) Step(ctx context.Context, id string) (Result, error) {
	defer e.lock(id)()
	r, err := e.Get(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if r.Phase.Terminal() && !r.draining() && len(r.pendingIntents()) == 0 {
		return e.result(&r, 0), nil
	}
	defer lockIn(&e.mu, e.targets, targetOf(r))()
	s := &stepper{e: e, r: &r}
	return s.run(ctx)
}

func (e *Stepper) result(r *Release, after time.Duration) Result {
	return Result{Phase: r.Phase, Summary: Describe(*r, e.clock.Now()), RequeueAfter: after, Done: r.Phase.Terminal()}
}

// emit is the one funnel for what happens to a release: it appends to the
// history, logs, and keeps the event for the release's next save, which
// puts it in the outbox with the change it announces.
func (e *Stepper) emit(ctx context.Context, r *Release, reason Reason, msg string) {
	r.note(EntryEvent, string(reason)+": "+msg)
	now := e.clock.Now()
	ev := Event{Reason: reason, Release: r.snapshot(), Summary: Describe(*r, now), Message: msg, At: now}
	level := slog.LevelInfo
	if slices.Contains([]Reason{ReasonGateFailed, ReasonNotReady, ReasonFailed, ReasonRollingBack}, reason) {
		level = slog.LevelWarn
	}
	e.log.Log(ctx, level, "release "+string(reason), "release", r.ID, "app", r.App, "env", r.Environment,
		"cluster", r.Cluster, "namespace", r.Namespace, "stage", r.Stage+1, "percent", r.Percent, "detail", msg)
	r.announce = append(r.announce, ev) // sent once saved, by save
}

// snapshot copies a release deeply enough that a notifier keeping it is not
// surprised by later steps.
func (r *Release) snapshot() Release {
	c := *r
	c.Stages = slices.Clone(r.Stages)
	c.Intents = slices.Clone(r.Intents)
	c.Checks = slices.Clone(r.Checks)
	c.History = slices.Clone(r.History)
	c.announce = nil
	return c
}

// Filter selects releases for List. Zero fields match everything.
type Filter struct {
	Project     string
	App         string
	Environment string
	Cluster     string
	Phases      []Phase
	User        string // the release's TriggeredBy, or the actor of any intent
	Since       time.Time
	Until       time.Time
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Release) bool {
	switch {
	case f.Project != "" && r.Project != f.Project,
		f.App != "" && r.App != f.App,
		f.Environment != "" && r.Environment != f.Environment,
		f.Cluster != "" && r.Cluster != f.Cluster,
		len(f.Phases) > 0 && !slices.Contains(f.Phases, r.Phase),
		!f.Since.IsZero() && r.Created.Before(f.Since),
		!f.Until.IsZero() && !r.Created.Before(f.Until):
		return false
	}
	if f.User == "" || r.TriggeredBy == f.User {
		return true
	}
	return slices.ContainsFunc(r.Intents, func(in Intent) bool { return in.Actor == f.User })
}

// List returns the releases that match f, newest first.
func (e *Stepper) List(ctx context.Context, f Filter) ([]Release, error) {
	all, err := e.all(ctx)
	all = slices.DeleteFunc(all, func(r Release) bool { return !f.Match(r) })
	slices.Reverse(all)
	return all, err
}

// Decode reads a stored release document.
func Decode(raw []byte) (Release, error) {
	var r Release
	if err := json.Unmarshal(raw, &r); err != nil {
		return Release{}, fmt.Errorf("decode release: %w", err)
	}
	return r, nil
}

package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// staged reports whether a build reaches an app's environment through a
// staged release rather than a plain deploy: tag builds of apps with a
// release spec for that environment.
func staged(app config.App, env string, b Build) (release.Spec, bool) {
	if !b.Tag {
		return release.Spec{}, false
	}
	return app.ReleaseFor(env)
}

// Releaser turns tag builds into staged releases.
type Releaser struct{ Config *config.Config }

// Build creates, inside tx, the releases a tag build asks for: for each app
// of the project with a release spec, one release per environment whose tag
// rules match and per cluster of it, chained in config order so that each
// starts only once the one before it has succeeded (prod1, then prod2). Each
// also queues behind, or supersedes, the active release of its own target.
// It returns the ids of the releases it created or asked to stop.
func (p Releaser) Build(tx *store.Tx, b Build, now time.Time) ([]string, error) {
	var touched []string
	for _, app := range p.Config.Apps {
		if app.Project != b.Project || string(app.Trigger) != string(b.Kind) {
			continue
		}
		prev := ""
		for _, env := range p.Config.Environments {
			spec, ok := staged(app, env.Name, b)
			if !ok || !matches(env, b) {
				continue
			}
			for _, cluster := range env.Clusters {
				r, err := p.release(app, env, cluster, spec, b, now)
				if err != nil {
					return nil, err
				}
				if dup, err := alreadyReleased(tx, r); err != nil || dup {
					if err != nil {
						return nil, err
					}
					continue
				}
				r.Requires = prev
				r, stopped, err := release.Enqueue(tx, r, release.OnNewer(spec.OnNewer), now)
				if err != nil {
					return nil, fmt.Errorf("release %s %s to %s on %s: %w", app.Name, b.Ref, env.Name, cluster, err)
				}
				prev = r.ID
				touched = append(append(touched, r.ID), stopped...)
			}
		}
	}
	return touched, nil
}

func (p Releaser) release(app config.App, env config.Environment, cluster string, spec release.Spec, b Build, now time.Time) (release.Release, error) {
	params, _ := app.ParamsFor(env.Name)
	image, err := app.ImageFor(config.ImageData{Project: b.Project, App: app.Name, SHA: b.SHA, ShortSHA: short(b.SHA), Ref: b.Ref, Environment: env.Name})
	if err != nil {
		return release.Release{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	d := store.Deployment{Environment: env.Name, Namespace: env.Namespace, Image: image}
	r := release.Release{
		App: app.Name, Project: b.Project, Environment: env.Name, Cluster: cluster, Namespace: env.Namespace,
		To:          release.Revision{Name: RevisionName(b.Ref, b.SHA), Image: image, SHA: b.SHA, Ref: b.Ref},
		Params:      TemplateParams(app, params, d),
		TriggeredBy: b.User, PipelineID: b.PipelineID, JobID: buildJob(b.Jobs, app.Job), JobName: app.Job,
		ResolveFrom: true,
	}
	spec.Configure(&r)
	if r.Replicas == 0 {
		r.Replicas = r.Params.Replicas
	}
	return release.Prepare(r, now)
}

// alreadyReleased reports whether a release of the same commit and
// pipeline to the same target exists: a pipeline whose jobs were retried
// sends a second success for the same build.
func alreadyReleased(tx *store.Tx, r release.Release) (bool, error) {
	found := false
	err := tx.Releases(func(_ string, raw []byte) error {
		o, err := release.Decode(raw)
		if err != nil {
			return err
		}
		if o.App == r.App && o.Environment == r.Environment && o.Cluster == r.Cluster &&
			o.To.SHA == r.To.SHA && o.PipelineID == r.PipelineID {
			found = true
		}
		return nil
	})
	return found, err
}

var notLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// RevisionName turns a tag such as v1.4.0 into a DNS label naming the
// revision (v1-4-0). A ref that leaves nothing falls back to the short sha.
func RevisionName(ref, sha string) string {
	n := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(ref), "-"), "-")
	if len(n) > 40 {
		n = strings.Trim(n[:40], "-")
	}
	if n == "" {
		return "r-" + short(sha)
	}
	return n
}

// ReleaseRunner steps the releases in the store: it resumes the active ones
// at start, steps a release again when it asked to be, when an intent is
// recorded on it and when one it waits for ends. It implements what the
// surfaces need (ops.Releases) by recording intents and waking the release.
type ReleaseRunner struct {
	Engine *release.Engine
	Log    *slog.Logger
	// Retry is how long to wait after a step fails; 5s when 0.
	Retry time.Duration

	mu      sync.Mutex
	ctx     context.Context
	running map[string]bool // a goroutine is stepping it
	again   map[string]bool // step once more when the current step returns
	timers  map[string]*time.Timer
	wg      sync.WaitGroup
	rescan  chan struct{}
}

// Run steps releases until ctx ends, then waits for the steps in hand.
func (rr *ReleaseRunner) Run(ctx context.Context) error {
	rr.mu.Lock()
	rr.ctx = ctx
	rr.running, rr.again, rr.timers = map[string]bool{}, map[string]bool{}, map[string]*time.Timer{}
	if rr.rescan == nil {
		rr.rescan = make(chan struct{}, 1)
	}
	rr.mu.Unlock()
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
func (rr *ReleaseRunner) Wake() {
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

func (rr *ReleaseRunner) scan(ctx context.Context) {
	active, err := rr.Engine.Active(ctx)
	if err != nil {
		rr.log().Error("list active releases", "err", err)
		return
	}
	for _, r := range active {
		rr.Kick(r.ID)
	}
}

// Kick steps release id now, or once more after the step in hand.
func (rr *ReleaseRunner) Kick(id string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.ctx == nil || rr.ctx.Err() != nil {
		return
	}
	if t := rr.timers[id]; t != nil {
		t.Stop()
		delete(rr.timers, id)
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
func (rr *ReleaseRunner) loop(ctx context.Context, id string) {
	defer rr.wg.Done()
	for {
		res, err := rr.Engine.Step(ctx, id)
		var after time.Duration
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, store.ErrNotFound):
			rr.log().Warn("release vanished", "release", id)
		case err != nil:
			after = rr.retry()
			rr.log().Error("release step failed; will retry", "release", id, "retry", after, "err", err)
		case res.Done:
			rr.Wake() // those queued behind it may start
		default:
			after = res.RequeueAfter
		}
		rr.mu.Lock()
		if rr.again[id] && ctx.Err() == nil {
			delete(rr.again, id)
			rr.mu.Unlock()
			continue
		}
		delete(rr.running, id)
		if after > 0 && ctx.Err() == nil {
			rr.timers[id] = time.AfterFunc(after, func() { rr.Kick(id) })
			if err == nil && res.Rollout != nil {
				rr.awaitRollout(ctx, id, *res.Rollout, after)
			}
		}
		rr.mu.Unlock()
		return
	}
}

// awaitRollout steps release id as soon as the Deployment it waits for has
// rolled out, instead of at its next poll; the timer still steps it if the
// watch sees nothing. Called with rr.mu held.
func (rr *ReleaseRunner) awaitRollout(ctx context.Context, id string, p release.Rollout, within time.Duration) {
	rr.wg.Add(1)
	go func() {
		defer rr.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		ok, err := rr.Engine.AwaitRollout(ctx, p)
		if err != nil && ctx.Err() == nil {
			rr.log().Debug("watch rollout; the poll steps it", "release", id, "err", err)
		}
		if ok {
			rr.Kick(id)
		}
	}()
}

func (rr *ReleaseRunner) retry() time.Duration {
	if rr.Retry > 0 {
		return rr.Retry
	}
	return 5 * time.Second
}

func (rr *ReleaseRunner) log() *slog.Logger {
	if rr.Log == nil {
		return slog.Default()
	}
	return rr.Log
}

// List lists releases, newest first.
func (rr *ReleaseRunner) List(ctx context.Context, f release.Filter) ([]release.Release, error) {
	return rr.Engine.List(ctx, f)
}

// Get reads a release.
func (rr *ReleaseRunner) Get(ctx context.Context, id string) (release.Release, error) {
	return rr.Engine.Get(ctx, id)
}

// Record records an intent and steps the release at once.
func (rr *ReleaseRunner) Record(ctx context.Context, id string, in release.Intent) (release.Release, error) {
	r, err := rr.Engine.Record(ctx, id, in)
	if err == nil {
		rr.Kick(id)
	}
	return r, err
}

// Refused keeps a refused intent in the release's audit history.
func (rr *ReleaseRunner) Refused(ctx context.Context, id string, f release.Refusal) (release.Release, error) {
	return rr.Engine.Refused(ctx, id, f)
}

// Approved keeps one person's approval in the release's audit history and
// returns who has approved the same intent so far. It steps nothing: the
// intent is recorded, with Record, once enough people have approved.
func (rr *ReleaseRunner) Approved(ctx context.Context, id string, a release.Approval) (release.Release, []string, error) {
	return rr.Engine.Approved(ctx, id, a)
}

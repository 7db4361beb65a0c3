// Package inbox drains the webhook inbox: it decodes each stored delivery,
// decides what it asks for and records that durably, in order.
package inbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/bot/hook"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
)

// Engine is the part of the deploy engine the worker needs.
type Engine interface{ Wake() }

// Worker processes deliveries one at a time, oldest first.
type Worker struct {
	Config *config.Config
	Store  *store.Store
	Engine Engine
	Log    *slog.Logger
	Now    func() time.Time

	wake chan struct{}
}

// NewWorker builds a worker.
func NewWorker(cfg *config.Config, st *store.Store, eng Engine, log *slog.Logger) *Worker {
	return &Worker{Config: cfg, Store: st, Engine: eng, Log: log, Now: time.Now, wake: make(chan struct{}, 1)}
}

// Wake tells the worker a delivery is waiting.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// batch is how many deliveries are read per pass.
const batch = 64

// Run drains the inbox until ctx ends. Shutdown waits for the delivery in
// hand: processing one is a local decision plus one transaction, never a
// network call, so it is quick and nothing is half-applied.
func (w *Worker) Run(ctx context.Context) error {
	for {
		pending, err := w.Store.Pending(batch)
		if err != nil {
			w.Log.Error("read inbox", "err", err)
		}
		for _, d := range pending {
			if ctx.Err() != nil {
				return nil
			}
			w.process(d)
		}
		if len(pending) == batch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-time.After(5 * time.Second):
		}
	}
}

func (w *Worker) process(d store.Delivery) {
	log := w.Log.With("delivery", d.Seq, "event", d.Event, "key", d.Key)
	deps, err := w.plan(d)
	if err != nil {
		// A delivery that cannot be planned never will be: drop it loudly
		// rather than block the inbox behind it.
		log.Error("delivery dropped", "err", err)
		deps = nil
	}
	recorded, err := w.Store.Complete(d.Seq, deps)
	if err != nil {
		log.Error("complete delivery", "err", err)
		return
	}
	for _, r := range recorded {
		log.Info("deployment queued", "deployment", r.ID, "app", r.App, "env", r.Environment, "cluster", r.Cluster, "sha", r.SHA)
	}
	if len(recorded) > 0 {
		w.Engine.Wake()
	}
}

// plan turns a delivery into the deployments it asks for.
func (w *Worker) plan(d store.Delivery) ([]store.Deployment, error) {
	ev, err := hook.Decode(d.Event, d.Body)
	if errors.Is(err, hook.ErrUnsupported) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, ok := BuildOf(ev)
	if !ok {
		return nil, nil
	}
	b.DeliveryKey = d.Key
	return deployer.Plan(w.Config, b, w.Now())
}

// BuildOf says whether an event is a build that may deploy: a successful
// branch or tag pipeline, or a push of a branch or tag that is not a deletion.
// Merge request pipelines belong to previews, not to environments.
func BuildOf(ev hook.Event) (deployer.Build, bool) {
	switch e := ev.(type) {
	case *hook.Pipeline:
		if e.Status != "success" || e.MergeRequest != nil || e.Source == "merge_request_event" {
			return deployer.Build{}, false
		}
		b := deployer.Build{Kind: deployer.TriggerPipeline, ProjectID: e.Project.ID, Project: e.Project.Path,
			Ref: e.Ref, Tag: e.Tag, SHA: e.SHA, PipelineID: e.ID, User: e.User.Username}
		for _, j := range e.Jobs {
			b.Jobs = append(b.Jobs, deployer.Job{ID: j.ID, Name: j.Name, Status: j.Status})
		}
		return b, true
	case *hook.Push:
		if e.Deleted {
			return deployer.Build{}, false
		}
		return deployer.Build{Kind: deployer.TriggerPush, ProjectID: e.Project.ID, Project: e.Project.Path,
			Ref: e.Branch, SHA: e.SHA, User: e.User.Username}, true
	case *hook.TagPush:
		if e.Deleted {
			return deployer.Build{}, false
		}
		return deployer.Build{Kind: deployer.TriggerPush, ProjectID: e.Project.ID, Project: e.Project.Path,
			Ref: e.Tag, Tag: true, SHA: e.SHA, User: e.User.Username}, true
	}
	return deployer.Build{}, false
}

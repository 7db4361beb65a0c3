package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// DeployRunner runs the deployments recorded in the store. One deployment per
// target (app, environment, cluster) runs at a time; when several wait for the
// same target, only the newest runs and the others are superseded.
type DeployRunner struct {
	cfg      config.Current
	store    *store.Store
	clusters map[string]*kube.Client
	sources  Sources
	notifier Notifier
	freezes  release.Freezes // nil: no freezes
	log      *slog.Logger
	now      func() time.Time
	metrics  *engineMetrics

	wake    chan struct{}
	mu      sync.Mutex
	running map[string]bool // targets with a deploy in hand
	// lastOrphanSweep is when labelled preview namespaces were last checked.
	lastOrphanSweep time.Time
	wg              sync.WaitGroup
}

type engineMetrics struct {
	deploys         *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	previewsRemoved *prometheus.CounterVec
}

// Options are the DeployRunner's collaborators.
type Options struct {
	// Config is read at each deploy, so a reload applies to the next one.
	Config   config.Current
	Store    *store.Store
	Clusters map[string]*kube.Client
	// Sources reads apps' files: their repositories, remote charts.
	Sources  Sources
	Notifier Notifier // may be nil
	// Freezes hold pending deployments of frozen environments; none when nil.
	Freezes  release.Freezes
	Log      *slog.Logger
	Now      func() time.Time // the clock; time.Now when nil
	Registry prometheus.Registerer
}

// NewDeployRunner checks every app's source files, so a missing template or
// chart fails at start rather than at the first deploy.
func NewDeployRunner(o Options) (*DeployRunner, error) {
	e := &DeployRunner{
		cfg: o.Config, store: o.Store, clusters: o.Clusters, sources: o.Sources, notifier: o.Notifier, freezes: o.Freezes, log: o.Log, now: o.Now,
		wake:    make(chan struct{}, 1),
		running: map[string]bool{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.notifier == nil {
		e.notifier = NotifierFunc(func(context.Context, Event) error { return nil })
	}
	cfg := o.Config.Load()
	for _, app := range cfg.Apps {
		if err := o.Sources.CheckSource(app); err != nil {
			return nil, err
		}
	}
	for _, env := range cfg.Environments {
		for _, c := range env.Clusters {
			if e.clusters[c] == nil {
				return nil, fmt.Errorf("environment %s: no client for cluster %s", env.Name, c)
			}
		}
	}
	e.metrics = &engineMetrics{
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_deploys_total", Help: "Finished deployments by environment and result.",
		}, []string{"environment", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shipbot_deploy_duration_seconds", Help: "Time from a deployment starting to its end, by result.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
		}, []string{"result"}),
		previewsRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_previews_removed_total", Help: "Preview environments removed, by reason (merged, closed, deleted, ttl, command, orphan).",
		}, []string{"reason"}),
	}
	if o.Registry != nil {
		o.Registry.MustRegister(e.metrics.deploys, e.metrics.duration, e.metrics.previewsRemoved)
	}
	return e, nil
}

// Wake asks the engine to look for new work now.
func (e *DeployRunner) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// rescanEvery bounds how long work can wait if a wake-up is ever missed.
const rescanEvery = 5 * time.Second

// Run starts pending deployments until ctx ends, then waits for the ones in
// hand. A deployment cut short stays "running" in the store and is resumed by
// the next Run; applying it again is harmless.
func (e *DeployRunner) Run(ctx context.Context) error {
	t := time.NewTicker(rescanEvery)
	defer t.Stop()
	for {
		if err := e.schedule(ctx); err != nil {
			e.log.Error("schedule deployments", "err", err)
		}
		e.sweepPreviews(ctx)
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-e.wake:
		case <-t.C:
		}
	}
}

// schedule starts the newest active deployment of every idle target.
func (e *DeployRunner) schedule(ctx context.Context) error {
	active, err := e.store.Deployments(func(d store.Deployment) bool { return d.Status.Active() })
	if err != nil {
		return err
	}
	byTarget := map[string][]store.Deployment{}
	for _, d := range active {
		byTarget[d.Target()] = append(byTarget[d.Target()], d)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for target, ds := range byTarget {
		if e.running[target] {
			continue
		}
		newestFirst(ds)
		for _, old := range ds[1:] {
			e.supersede(ctx, old, ds[0])
		}
		if why, err := e.held(ctx, ds[0]); why != "" || err != nil {
			if err != nil {
				e.log.Warn("check locks and freezes; the deployment waits", "id", ds[0].ID, "err", err)
				continue
			}
			e.hold(ds[0], why)
			continue
		}
		e.running[target] = true
		e.wg.Add(1)
		go func(d store.Deployment) {
			defer e.wg.Done()
			e.deploy(ctx, d)
			e.mu.Lock()
			delete(e.running, d.Target())
			e.mu.Unlock()
			e.Wake()
		}(ds[0])
	}
	return nil
}

func (e *DeployRunner) supersede(ctx context.Context, old, by store.Deployment) {
	err := old.Transition(store.StatusSuperseded)
	old.Reason, old.Finished = "superseded by "+by.ID+" ("+short(by.SHA)+")", e.now()
	if err == nil {
		err = e.store.PutDeployment(old)
	}
	if err != nil {
		e.log.Error("supersede deployment", "id", old.ID, "err", err)
		return
	}
	e.emit(ctx, Event{Reason: ReasonDeploySuperseded, Deployment: old, Message: old.Reason})
}

// emit is the one funnel for everything that happens: log, metrics, notifiers.
func (e *DeployRunner) emit(ctx context.Context, ev Event) {
	d := ev.Deployment
	if ev.Preview != nil && d.ID == "" {
		d = store.Deployment{Project: ev.Preview.Project, Namespace: ev.Preview.Namespace, Preview: ev.Preview.Key}
	}
	level := slog.LevelInfo
	if ev.Reason == ReasonDeployFailed || ev.Reason == ReasonPreviewFailed {
		level = slog.LevelWarn
	}
	attrs := []any{"deployment", d.ID, "app", d.App, "env", d.Environment, "cluster", d.Cluster, "namespace", d.Namespace,
		"ref", d.Ref, "sha", d.SHA, "pipeline", d.PipelineID, "job", d.JobID, "user", d.User}
	if d.Preview != "" {
		attrs = append(attrs, "preview", d.Preview)
	}
	if ev.Message != "" {
		attrs = append(attrs, "detail", ev.Message)
	}
	e.log.Log(ctx, level, string(ev.Reason), attrs...)
	if ev.Reason == ReasonDeploySucceeded || ev.Reason == ReasonDeployFailed {
		e.metrics.deploys.WithLabelValues(d.Environment, string(d.Status)).Inc()
		e.metrics.duration.WithLabelValues(string(d.Status)).Observe(d.Finished.Sub(d.Started).Seconds())
	}
	if err := e.notifier.Notify(ctx, ev); err != nil {
		e.log.Warn("notify", "reason", ev.Reason, "deployment", d.ID, "err", err)
	}
}

// errStopped marks a deploy cut short by shutdown; it is resumed on restart.
var errStopped = errors.New("shipbot is stopping")

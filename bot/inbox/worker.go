// Package inbox drains the webhook inbox: it decodes each stored delivery,
// decides what it asks for and records that durably, in order.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Waker is the part of the deploy engine the worker needs.
type Waker interface{ Wake() }

// Notes takes merge request comments. Record returns the changes that
// record a comment's command, raw as delivered, in the delivery's own
// transaction (nil for a comment that is none) and calls nothing: the
// command's own worker, woken by Wake, runs it, so the inbox never waits
// on what a command asks of GitLab.
type Notes interface {
	Record(d store.Delivery, n *gitlabevent.Note) func(*store.Tx) error
	Wake()
}

// Worker processes deliveries one at a time, oldest first.
type Worker struct {
	// Config is loaded once per delivery, so a reload applies from the
	// next delivery on.
	Config  config.Current
	Store   *store.Store
	Deploys Waker
	Notes   Notes // nil: comments are ignored
	// Releases is woken after a delivery that may have started or stopped
	// staged releases; nil when none are configured.
	Releases Waker
	Log      *slog.Logger
	Now      func() time.Time
	// Apps reads the apps a project's .shipbot.yaml declares at a build's
	// commit; with no Config set, only Config's apps deploy.
	Apps deployer.Apps
	// Notifier hears of builds refused for their .shipbot.yaml; may be nil.
	Notifier deployer.Notifier
	// Plan is asked to plan a merge request whose pipeline succeeded; may be nil.
	Plan func(projectID int64, project string, iid int64)
	// RepoTimeout bounds the wait for a project's .shipbot.yaml at a
	// build's commit, the one GitLab call the inbox makes; 30s when 0. A
	// build whose file does not come in time, or cannot be read, is parked
	// (see RepoRetryFor); the download goes on, and the next attempt finds
	// it.
	RepoTimeout time.Duration
	// RepoRetryFor is how long a build whose .shipbot.yaml cannot be read
	// (GitLab down, slow or refusing) is tried again before it is refused;
	// 30m when 0. Until then the delivery stays in the inbox, and so do the
	// later deliveries of its project, so that none overtakes it.
	RepoRetryFor time.Duration

	wake   chan struct{}
	parked map[uint64]*parked
}

// parked is a delivery left in the inbox because its project's
// .shipbot.yaml could not be read; it is tried again at next.
type parked struct {
	project     string
	first, next time.Time
	backoff     time.Duration
	err         error
}

// errParked says a delivery was left in the inbox, to be tried again.
var errParked = errors.New("left in the inbox to try again")

// NewWorker returns a worker with w's collaborators, ready to run; its
// clock is time.Now when w.Now is nil.
func NewWorker(w Worker) *Worker {
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Apps.Config == nil {
		w.Apps.Config = w.Config
	}
	if w.RepoTimeout == 0 {
		w.RepoTimeout = 30 * time.Second
	}
	if w.RepoRetryFor == 0 {
		w.RepoRetryFor = 30 * time.Minute
	}
	w.wake = make(chan struct{}, 1)
	w.parked = map[uint64]*parked{}
	return &w
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
// hand: processing one is a local decision plus one transaction, so nothing
// is half-applied. A comment's command is only recorded here, for its own
// worker to run; the one network call left is, for a project with its own
// .shipbot.yaml, reading that file at the build's commit (once per commit,
// within RepoTimeout).
func (w *Worker) Run(ctx context.Context) error {
	for {
		pending, err := w.Store.Pending(batch)
		if err != nil {
			w.Log.Error("read inbox", "err", err)
		}
		held := map[string]bool{} // projects with a parked delivery
		processed := 0
		for _, d := range pending {
			if ctx.Err() != nil {
				return nil
			}
			if p := w.parked[d.Seq]; p != nil && w.Now().Before(p.next) {
				held[p.project] = true
				continue
			}
			if len(held) > 0 && held[projectOf(d)] {
				continue // keeps its place behind the parked one
			}
			if p := w.process(context.WithoutCancel(ctx), d); p != "" {
				held[p] = true
				continue
			}
			processed++
		}
		if len(pending) == batch && processed > 0 {
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

// projectOf is the path of the project a delivery names; "" when it does
// not decode.
func projectOf(d store.Delivery) string {
	ev, err := gitlabevent.Decode(d.Event, d.Body)
	if err != nil {
		return ""
	}
	return gitlabevent.ProjectOf(ev).Path
}

// process applies one delivery and removes it from the inbox, or, when its
// project's .shipbot.yaml could not be read, leaves it there and returns
// the project.
func (w *Worker) process(ctx context.Context, d store.Delivery) (parkedProject string) {
	log := w.Log.With("delivery", d.Seq, "event", d.Event, "key", d.Key)
	ev, err := gitlabevent.Decode(d.Event, d.Body)
	if err != nil && !errors.Is(err, gitlabevent.ErrUnsupported) {
		// A delivery that cannot be decoded never will be: drop it loudly
		// rather than block the inbox behind it.
		log.Error("delivery dropped", "err", err)
	}
	var changes func(*store.Tx) error
	var after func(error)
	if n, ok := ev.(*gitlabevent.Note); ok && w.Notes != nil {
		if changes = w.Notes.Record(d, n); changes != nil {
			after = func(committed error) {
				if committed == nil {
					w.Notes.Wake()
				}
			}
		}
	} else if err == nil {
		changes, after = w.changes(ctx, ev, d)
		if p := w.parked[d.Seq]; p != nil && changes == nil && errors.Is(p.err, errParked) {
			log.Warn("delivery left in the inbox: its project's config could not be read", "project", p.project, "retry_in", p.backoff, "err", p.err)
			return p.project
		}
	}
	delete(w.parked, d.Seq)
	recorded, err := w.Store.Complete(d.Seq, refusable(changes))
	var refused *refusal
	if errors.As(err, &refused) {
		// What the delivery asks for can never be done as asked (say, a
		// release spec the tag cannot satisfy): nothing of it was applied.
		// Drop it loudly rather than retry it forever ahead of the rest.
		log.Error("delivery refused; nothing applied", "err", refused.err)
		recorded, err = w.Store.Complete(d.Seq, nil)
	}
	if after != nil {
		after(err)
	}
	if err != nil {
		log.Error("complete delivery", "err", err)
		return ""
	}
	for _, r := range recorded {
		log.Info("deployment queued", "deployment", r.ID, "app", r.App, "env", r.Environment, "cluster", r.Cluster, "namespace", r.Namespace, "sha", r.SHA)
	}
	// Previews may have been stopped too: the engine looks either way.
	w.Deploys.Wake()
	if w.Releases != nil {
		w.Releases.Wake()
	}
	return ""
}

// changes decides what an event asks for, as changes to apply in the same
// transaction that removes it from the inbox.
// A build's changes are decided with the apps its commit sees; a build
// whose .shipbot.yaml is refused changes nothing, and is announced once
// the delivery is done.
func (w *Worker) changes(ctx context.Context, ev gitlabevent.Event, d store.Delivery) (func(*store.Tx) error, func(error)) {
	now := w.Now()
	previews := deployer.Previewer{Config: w.Config.Load()}
	switch e := ev.(type) {
	case *gitlabevent.MergeRequest:
		return func(tx *store.Tx) error {
			if err := previews.ObserveMR(tx, mergeRequestOf(e), e.Action, now); err != nil {
				return err
			}
			return recheckApprovals(tx, e)
		}, nil
	}
	b, ok := BuildOf(ev)
	if !ok {
		return w.mergeRequestBuild(ctx, ev, d, now)
	}
	b.DeliveryKey = d.Key
	cfg, refused := w.configAt(ctx, b, 0, d.Seq)
	if cfg == nil { // refused, or parked
		return nil, refused
	}
	return func(tx *store.Tx) error { return deployer.RecordBuild(tx, cfg, b, now) }, nil
}

// mergeRequestBuild handles a successful merge request pipeline: it deploys
// the merge request's preview.
func (w *Worker) mergeRequestBuild(ctx context.Context, ev gitlabevent.Event, d store.Delivery, now time.Time) (func(*store.Tx) error, func(error)) {
	p, ok := ev.(*gitlabevent.Pipeline)
	if !ok || p.Status != "success" || p.MergeRequest == nil {
		return nil, nil
	}
	b := pipelineBuild(p)
	b.DeliveryKey = d.Key
	cfg, refused := w.configAt(ctx, b, p.MergeRequest.IID, d.Seq)
	if cfg == nil { // refused, or parked
		return nil, refused
	}
	mr := deployer.MergeRequest{ProjectID: p.Project.ID, Project: p.Project.Path, IID: p.MergeRequest.IID,
		SourceBranch: p.MergeRequest.SourceBranch, State: p.MergeRequest.State, WebURL: p.MergeRequest.URL, User: p.User.Username}
	plan := func(committed error) {
		if committed == nil && w.Plan != nil {
			w.Plan(p.Project.ID, p.Project.Path, p.MergeRequest.IID)
		}
	}
	return func(tx *store.Tx) error { return deployer.Previewer{Config: cfg}.Build(tx, mr, b, now) }, plan
}

// configAt is the config a build sees, with its repository's apps. When
// its .shipbot.yaml is refused, or cannot be read, it returns what to do
// once the delivery is done instead: log, and tell the build's author
// (the merge request, the commit's status, chat). Nothing is applied.
//
// A file that could not be read (as opposed to one read and refused) parks
// the delivery instead, with a growing wait, for up to RepoRetryFor.
func (w *Worker) configAt(ctx context.Context, b deployer.Build, iid int64, seq uint64) (*config.Config, func(error)) {
	actx, cancel := context.WithTimeout(ctx, w.RepoTimeout)
	defer cancel()
	cfg, err := w.Apps.At(actx, b.Project, b.SHA)
	if err == nil {
		return cfg, nil
	}
	var invalid *config.Error
	if !errors.As(err, &invalid) {
		now := w.Now()
		p := w.parked[seq]
		if p == nil {
			p = &parked{project: b.Project, first: now}
			w.parked[seq] = p
		}
		if now.Sub(p.first) < w.RepoRetryFor {
			p.backoff = min(max(2*p.backoff, 5*time.Second), 2*time.Minute)
			p.next, p.err = now.Add(p.backoff), fmt.Errorf("%w: %w", errParked, err)
			return nil, nil
		}
		delete(w.parked, seq)
		err = fmt.Errorf("tried for %s: %w", now.Sub(p.first).Round(time.Second), err)
	}
	return nil, func(committed error) {
		if committed != nil {
			return
		}
		w.Log.Warn("build refused; nothing applied", "project", b.Project, "ref", b.Ref, "sha", b.SHA, "pipeline", b.PipelineID, "err", err)
		if w.Notifier == nil {
			return
		}
		ev := deployer.Event{Reason: deployer.ReasonConfigRefused, MergeRequest: iid, Message: err.Error(), Deployment: store.Deployment{
			Project: b.Project, ProjectID: b.ProjectID, Ref: b.Ref, Tag: b.Tag, SHA: b.SHA, PipelineID: b.PipelineID, User: b.User,
		}}
		if err := w.Notifier.Notify(ctx, ev); err != nil {
			w.Log.Warn("notify", "reason", ev.Reason, "project", b.Project, "sha", b.SHA, "err", err)
		}
	}
}

// recheckApprovals makes release gates that wait for merge request
// approvals due now when GitLab reports one: approving in GitLab moves the
// release on, without waiting for the gate's next poll. GitLab says
// "approval" for each approval and "approved" once all rules are met.
func recheckApprovals(tx *store.Tx, e *gitlabevent.MergeRequest) error {
	if e.Action != "approval" && e.Action != "approved" {
		return nil
	}
	_, err := release.RecheckApprovals(tx, e.Project.Path)
	return err
}

func mergeRequestOf(e *gitlabevent.MergeRequest) deployer.MergeRequest {
	return deployer.MergeRequest{ProjectID: e.Project.ID, Project: e.Project.Path, IID: e.IID, Title: e.Title, State: e.State,
		SourceBranch: e.SourceBranch, HeadSHA: e.HeadSHA, WebURL: e.URL, Labels: e.Labels, User: e.User.Username}
}

func pipelineBuild(e *gitlabevent.Pipeline) deployer.Build {
	b := deployer.Build{Kind: deployer.TriggerPipeline, ProjectID: e.Project.ID, Project: e.Project.Path,
		Ref: e.Ref, Tag: e.Tag, SHA: e.SHA, PipelineID: e.ID, User: e.User.Username}
	for _, j := range e.Jobs {
		b.Jobs = append(b.Jobs, deployer.Job{ID: j.ID, Name: j.Name, Status: j.Status})
	}
	return b
}

// BuildOf says whether an event is a build that may deploy: a successful
// branch or tag pipeline, or a push of a branch or tag that is not a deletion.
// Merge request pipelines belong to previews, not to environments.
func BuildOf(ev gitlabevent.Event) (deployer.Build, bool) {
	switch e := ev.(type) {
	case *gitlabevent.Pipeline:
		if e.Status != "success" || e.MergeRequest != nil || e.Source == "merge_request_event" {
			return deployer.Build{}, false
		}
		return pipelineBuild(e), true
	case *gitlabevent.Push:
		if e.Deleted {
			return deployer.Build{}, false
		}
		return deployer.Build{Kind: deployer.TriggerPush, ProjectID: e.Project.ID, Project: e.Project.Path,
			Ref: e.Branch, SHA: e.SHA, User: e.User.Username}, true
	case *gitlabevent.TagPush:
		if e.Deleted {
			return deployer.Build{}, false
		}
		return deployer.Build{Kind: deployer.TriggerPush, ProjectID: e.Project.ID, Project: e.Project.Path,
			Ref: e.Tag, Tag: true, SHA: e.SHA, User: e.User.Username}, true
	}
	return deployer.Build{}, false
}

// refusal is an error of a delivery's changes, as opposed to one of the
// store: retrying the delivery would fail the same way.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refusable(changes func(*store.Tx) error) func(*store.Tx) error {
	if changes == nil {
		return nil
	}
	return func(tx *store.Tx) error {
		if err := changes(tx); err != nil {
			return &refusal{err}
		}
		return nil
	}
}

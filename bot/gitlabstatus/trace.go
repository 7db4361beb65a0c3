// Package gitlabstatus mirrors what shipbot does into GitLab, so a commit shows
// where it runs: a shipbot/<env> commit status on the deployed commit, and
// a GitLab environment per shipbot environment with a deployment record per
// deploy and per staged release.
//
// A Tracer is a release.Notifier; Deploys wraps the engine's
// deployer.Notifier. Both post only what changed, bound every call with a
// timeout and return errors for the engine to log: nothing here retries, so
// a failed post is made again by the next event that wants it.
package gitlabstatus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/config"
)

// GitLab is the part of the GitLab API the tracer uses.
type GitLab interface {
	ProjectID(ctx context.Context, path string) (int64, error)
	EnsureEnvironment(ctx context.Context, projectID int64, name, externalURL string) (int64, error)
	CreateDeployment(ctx context.Context, projectID int64, d gitlab.Deployment) (int64, error)
	UpdateDeployment(ctx context.Context, projectID, deploymentID int64, status string) error
	SetCommitStatus(ctx context.Context, projectID int64, sha, name, state, targetURL, description string) error
}

var _ GitLab = (*gitlab.Client)(nil)

// StatusPrefix starts the name of every commit status shipbot sets.
const StatusPrefix = "shipbot/"

// DefaultTimeout bounds one event's GitLab calls when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Options configure New.
type Options struct {
	API GitLab
	// GitLabURL is GitLab's address (config gitlab.baseURL, with or without
	// /api/v4), the base of pipeline links.
	GitLabURL string
	// PublicURL is shipbot's own address (config publicURL); when set,
	// release statuses link to <PublicURL>/releases/<id>.
	PublicURL string
	// Host returns an app's host param in an environment, "" when it has
	// none; the GitLab environment's external URL is https://<host>.
	Host func(app, env string) string
	// Timeout bounds the GitLab calls of one event; DefaultTimeout when 0.
	Timeout time.Duration
}

// ConfigHost is Options.Host for a configuration: the app's host param in
// the environment, merged as its templates see it, in the config in force.
func ConfigHost(cfg config.Current) func(app, env string) string {
	return func(app, env string) string {
		a, _ := cfg.Load().App(app)
		p, _ := a.ParamsFor(env)
		return p.Host
	}
}

// Tracer records deploys and releases in GitLab. It is safe for concurrent use.
type Tracer struct {
	api       GitLab
	gitlabURL string
	publicURL string
	host      func(app, env string) string
	timeout   time.Duration

	mu       sync.Mutex
	locks    map[string]chan struct{} // one-slot semaphores
	projects map[string]int64         // path -> id
	targets  map[string]*target       // per project, sha and environment
	deploys  map[string]deployRecord  // by shipbot deploy or release id
}

// New returns a tracer.
func New(o Options) *Tracer {
	base := strings.TrimRight(o.GitLabURL, "/")
	base = strings.TrimRight(strings.TrimSuffix(base, "/api/v4"), "/")
	host := o.Host
	if host == nil {
		host = func(string, string) string { return "" }
	}
	return &Tracer{
		api: o.API, gitlabURL: base, publicURL: strings.TrimRight(o.PublicURL, "/"), host: host,
		timeout: cmp.Or(o.Timeout, DefaultTimeout),
		locks:   map[string]chan struct{}{}, projects: map[string]int64{},
		targets: map[string]*target{}, deploys: map[string]deployRecord{},
	}
}

// lock serialises the work on one environment of a project, so two events
// never race to create two deployment records or post statuses out of
// order. Keyed by environment rather than commit, the locks stay few.
// Waiting for it counts against the event's timeout.
func (t *Tracer) lock(ctx context.Context, key string) (func(), error) {
	t.mu.Lock()
	l := t.locks[key]
	if l == nil {
		l = make(chan struct{}, 1)
		t.locks[key] = l
	}
	t.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for another event of %s: %w", key, context.Cause(ctx))
	}
}

// projectID resolves a project path once; id is used when already known.
func (t *Tracer) projectID(ctx context.Context, path string, id int64) (int64, error) {
	if id != 0 {
		return id, nil
	}
	t.mu.Lock()
	id = t.projects[path]
	t.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	id, err := t.api.ProjectID(ctx, path)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	t.projects[path] = id
	t.mu.Unlock()
	return id, nil
}

// pipelineURL links to a pipeline, or to nothing without one.
func (t *Tracer) pipelineURL(project string, pipeline int64) string {
	if t.gitlabURL == "" || project == "" || pipeline == 0 {
		return ""
	}
	return fmt.Sprintf("%s/%s/-/pipelines/%d", t.gitlabURL, project, pipeline)
}

// record is one deploy or release as GitLab should show it.
type record struct {
	projectID   int64
	key         string // shipbot's deploy or release id, prefixed with its kind
	app, env    string
	cluster     string
	ref, sha    string
	tag         bool
	host        string
	started     bool   // it did something to the cluster, so it has a deployment record
	deployment  string // gitlab.Deployment* status; "" leaves the record alone
	state, desc string // commit status of this cluster
	targetURL   string
}

// trace brings GitLab in step with one record: the environment and the
// deployment record, then the commit status, which is posted even when the
// record could not be written.
// trace brings the GitLab deployment record and the commit status up to
// rec. It reports whether it wrote either.
func (t *Tracer) trace(ctx context.Context, rec record) (bool, error) {
	unlock, err := t.lock(ctx, fmt.Sprintf("%d/%s", rec.projectID, rec.env))
	if err != nil {
		return false, err
	}
	defer unlock()
	wroteDeploy, errDeploy := t.deployment(ctx, rec)
	wroteStatus, errStatus := t.status(ctx, rec)
	return wroteDeploy || wroteStatus, errors.Join(errDeploy, errStatus)
}

// deployRecord is the GitLab deployment record of a deploy or release.
type deployRecord struct {
	id     int64
	closed bool // set to its final status: a replayed end changes nothing
}

// deployment creates the record once the deploy has started and moves it
// to its final status at the end. After a restart the id is forgotten; then
// creating it again is harmless, since GitLab answers with the environment's
// last deployment when ref, tag, sha and status all match it. It reports
// whether it wrote to GitLab.
func (t *Tracer) deployment(ctx context.Context, rec record) (bool, error) {
	if !rec.started || rec.deployment == "" {
		return false, nil
	}
	t.mu.Lock()
	d := t.deploys[rec.key]
	t.mu.Unlock()
	if d.closed {
		return false, nil
	}
	created := false
	if d.id == 0 {
		if err := t.environment(ctx, rec); err != nil {
			return false, err
		}
		id, err := t.api.CreateDeployment(ctx, rec.projectID, gitlab.Deployment{
			Environment: rec.env, Ref: rec.ref, SHA: rec.sha, Tag: rec.tag, Status: gitlab.DeploymentRunning,
		})
		if err != nil {
			return false, err
		}
		d.id, created = id, true
		t.remember(rec.key, d)
	}
	if rec.deployment == gitlab.DeploymentRunning {
		return created, nil
	}
	if err := t.api.UpdateDeployment(ctx, rec.projectID, d.id, rec.deployment); err != nil {
		return false, err
	}
	d.closed = true
	t.remember(rec.key, d)
	return true, nil
}

func (t *Tracer) remember(key string, d deployRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deploys[key] = d
	t.prune()
}

// environment ensures the GitLab environment, with the app's host as its
// external URL. CreateDeployment would make a missing one, but without a URL.
func (t *Tracer) environment(ctx context.Context, rec record) error {
	extURL := ""
	if rec.host != "" {
		extURL = "https://" + rec.host
	}
	_, err := t.api.EnsureEnvironment(ctx, rec.projectID, rec.env, extURL)
	return err
}

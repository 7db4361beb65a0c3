package gitlabstatus_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabstatus"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token   = "glpat-test-secret-token"
	project = int64(42)
	path    = "shop/web"
	sha     = "0123456789abcdef0123456789abcdef01234567"
	sha2    = "89abcdef0123456789abcdef0123456789abcdef"
)

// post is one SetCommitStatus call as the tracer made it.
type post struct{ name, state, url, desc string }

// recorder is the real client, counting what the tracer posts, so tests can
// tell "posted and refused by GitLab" from "not posted".
type recorder struct {
	*gitlab.Client
	mu    sync.Mutex
	posts []post
}

func (r *recorder) SetCommitStatus(ctx context.Context, projectID int64, sha, name, state, targetURL, description string) error {
	r.mu.Lock()
	r.posts = append(r.posts, post{name, state, targetURL, description})
	r.mu.Unlock()
	return r.Client.SetCommitStatus(ctx, projectID, sha, name, state, targetURL, description)
}

// take returns the posts since the last take.
func (r *recorder) take() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.posts
	r.posts = nil
	return out
}

func setup(t *testing.T, o gitlabstatus.Options) (*fakegitlab.Server, *recorder, *gitlabstatus.Tracer) {
	t.Helper()
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(project, path)
	c, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if u := fake.Unexpected(); len(u) > 0 {
			t.Errorf("calls the fake has no route for: %v", u)
		}
	})
	rec := &recorder{Client: c}
	o.API, o.GitLabURL = rec, fake.URL()+"/api/v4"
	return fake, rec, gitlabstatus.New(o)
}

func canary() release.Release {
	return release.Release{
		ID: "r000000000001", App: "web", Project: path, Environment: "prod1", Cluster: "c1", Namespace: "web",
		From:     release.Revision{Name: "v1-3-0", SHA: sha2, Ref: "v1.3.0"},
		To:       release.Revision{Name: "v1-4-0", SHA: sha, Ref: "v1.4.0"},
		Strategy: release.Canary, PipelineID: 77, Params: templates.Params{Host: "web.example.com"},
		Stages: []release.Stage{
			{Target: 10, Continue: release.Auto}, {Target: 50, Continue: release.Manual}, {Target: 100, Continue: release.Auto},
		},
		Phase: release.Pending,
	}
}

func to(t *testing.T, r *release.Release, p release.Phase) {
	t.Helper()
	if err := r.Transition(p, "test"); err != nil {
		t.Fatal(err)
	}
}

// notify hands tr an event of r as it is now, failing the test on an
// error. Having nothing new to post is not one.
func notify(t *testing.T, tr *gitlabstatus.Tracer, r release.Release, reason release.Reason, msg string) {
	t.Helper()
	err := tr.Notify(t.Context(), release.Event{Reason: reason, Release: r, Message: msg})
	if err != nil && !errors.Is(err, release.ErrUnchanged) {
		t.Fatal(err)
	}
}

func checkPosts(t *testing.T, step string, got []post, want ...post) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: posted\n%q\nwant\n%q", step, got, want)
	}
}

func TestReleaseLifecycle(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{})
	pipeline := fake.URL() + "/shop/web/-/pipelines/77"
	st := func(state, desc string) post { return post{"shipbot/prod1", state, pipeline, desc} }
	r := canary()

	notify(t, tr, r, release.ReasonQueued, "waiting for release r0 to end")
	checkPosts(t, "queued", rec.take(), st("pending", "queued: waiting for release r0 to end"))
	err := tr.Notify(t.Context(), release.Event{Reason: release.ReasonQueued, Release: r, Message: "waiting for release r0 to end"})
	if !errors.Is(err, release.ErrUnchanged) {
		t.Errorf("a replayed event answered %v, want ErrUnchanged", err)
	}
	checkPosts(t, "queued again", rec.take())
	if d := fake.Deployments(project); len(d) != 0 {
		t.Fatalf("a queued release has deployment records: %+v", d)
	}

	to(t, &r, release.Progressing)
	notify(t, tr, r, release.ReasonStageStarted, "")
	checkPosts(t, "stage 1", rec.take(), st("running", "stage 1/3: moving to 10% of traffic"))
	wantEnv := []fakegitlab.Environment{{ID: 501, Name: "prod1", Slug: "prod1", ExternalURL: "https://web.example.com", State: "available"}}
	if got := fake.Environments(project); !slices.Equal(got, wantEnv) {
		t.Errorf("environments %+v, want %+v", got, wantEnv)
	}
	checkDeployments(t, fake, "running")

	r.Percent = 10
	to(t, &r, release.Verifying)
	notify(t, tr, r, release.ReasonStageCompleted, "")
	r.Stage = 1
	to(t, &r, release.Progressing)
	notify(t, tr, r, release.ReasonStageStarted, "")
	r.Percent = 50
	to(t, &r, release.Verifying)
	notify(t, tr, r, release.ReasonStageCompleted, "")
	r.Stage = 2
	to(t, &r, release.Paused)
	notify(t, tr, r, release.ReasonPaused, "")
	notify(t, tr, r, release.ReasonIntentRejected, "promote by bob: conflict")
	// GitLab refuses running -> running, whatever the description: shipbot
	// does not post what would be refused.
	checkPosts(t, "stages", rec.take())
	err = tr.Notify(t.Context(), release.Event{Reason: release.ReasonPaused, Release: r})
	if !errors.Is(err, release.ErrUnchanged) {
		t.Errorf("a running -> running event answered %v, want ErrUnchanged", err)
	}
	checkDeployments(t, fake, "running")

	to(t, &r, release.Progressing)
	notify(t, tr, r, release.ReasonStageStarted, "")
	r.Stage, r.Percent = 3, 100
	to(t, &r, release.Succeeded)
	notify(t, tr, r, release.ReasonSucceeded, "")
	notify(t, tr, r, release.ReasonSucceeded, "") // a replay changes nothing
	checkPosts(t, "end", rec.take(), st("success", "v1-4-0 serves 100% of traffic"))
	checkDeployments(t, fake, "success")
	// GitLab keeps one record per name, moved pending -> running -> success.
	got := fake.Statuses(project, sha)
	if len(got) != 1 || got[0].Name != "shipbot/prod1" || got[0].State != "success" ||
		got[0].Description != "v1-4-0 serves 100% of traffic" || got[0].TargetURL != pipeline {
		t.Errorf("statuses %+v", got)
	}
}

// checkDeployments asserts the one deployment record of the canary release.
func checkDeployments(t *testing.T, fake *fakegitlab.Server, status string) {
	t.Helper()
	got := fake.Deployments(project)
	want := []fakegitlab.Deployment{{ID: 7001, IID: 1, Environment: "prod1", Ref: "v1.4.0", SHA: sha, Tag: true, Status: status}}
	if !slices.Equal(got, want) {
		t.Errorf("deployments %+v, want %+v", got, want)
	}
}

func TestReleaseRollback(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{PublicURL: "https://shipbot.example.com/"})
	page := "https://shipbot.example.com/releases/r000000000001"
	r := canary()
	to(t, &r, release.Progressing)
	notify(t, tr, r, release.ReasonStageStarted, "")
	r.Reason = "gate error-rate failed: 7% > 1%"
	to(t, &r, release.RollingBack)
	notify(t, tr, r, release.ReasonRollingBack, r.Reason)
	to(t, &r, release.RolledBack)
	notify(t, tr, r, release.ReasonRolledBack, r.Reason)
	checkPosts(t, "rollback", rec.take(),
		post{"shipbot/prod1", "running", page, "stage 1/3: moving to 10% of traffic"},
		post{"shipbot/prod1", "failed", page, "rolled back to v1-3-0 at stage 1/3: gate error-rate failed: 7% > 1%"},
	)
	checkDeployments(t, fake, "failed")
	if got := fake.Statuses(project, sha); len(got) != 1 || got[0].State != "failed" || got[0].TargetURL != page {
		t.Errorf("statuses %+v", got)
	}
}

func TestReleaseAbortedWhileQueued(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{})
	r := canary()
	notify(t, tr, r, release.ReasonQueued, "waiting for release r0 to succeed in prod1 first")
	r.Reason = "release r0 in prod1 ended RolledBack"
	to(t, &r, release.Aborted)
	notify(t, tr, r, release.ReasonAborted, r.Reason)
	pipeline := fake.URL() + "/shop/web/-/pipelines/77"
	checkPosts(t, "abort", rec.take(),
		post{"shipbot/prod1", "pending", pipeline, "queued: waiting for release r0 to succeed in prod1 first"},
		post{"shipbot/prod1", "canceled", pipeline, "aborted at stage 1/3: release r0 in prod1 ended RolledBack"},
	)
	if d := fake.Deployments(project); len(d) != 0 {
		t.Errorf("a release that never started has deployment records: %+v", d)
	}
	if e := fake.Environments(project); len(e) != 0 {
		t.Errorf("a release that never started made environments: %+v", e)
	}
}

func TestReleaseStatus(t *testing.T) {
	started := func(r *release.Release) { _ = r.Transition(release.Progressing, "started") }
	for _, tc := range []struct {
		name  string
		setup func(*release.Release)
		state string
		desc  string
	}{
		{"pending", func(*release.Release) {}, "pending", "waiting to start"},
		{"frozen", func(r *release.Release) {
			r.Hold = &release.Hold{Kind: release.HoldFreeze, Message: "frozen until 2026-03-02 06:00 UTC (shipbot.yaml: weekend)"}
		}, "pending", "stage 1/3: held, frozen until 2026-03-02 06:00 UTC (shipbot.yaml: weekend)"},
		{"before gate", func(r *release.Release) {
			started(r)
			r.Stage, r.Percent = 1, 10
			r.Checks = []release.Check{{Stage: 1, When: release.Before, Gate: "smoke", Status: release.CheckRunning, Runs: 3}}
		}, "running", "stage 2/3: 10% of traffic, gate smoke before moving to 50%"},
		{"after gate", func(r *release.Release) {
			started(r)
			_ = r.Transition(release.Verifying, "at 10")
			r.Percent = 10
			r.Checks = []release.Check{{Stage: 0, When: release.After, Gate: "error-rate", Status: release.CheckRunning, Failures: 1}}
		}, "running", "stage 1/3: 10% of traffic, verifying gate error-rate"},
		{"paused by a person", func(r *release.Release) {
			started(r)
			r.Percent = 10
			r.History = append(r.History, release.Entry{Actor: "alice", Kind: release.EntryTransition, Phase: release.Paused})
			r.Phase = release.Paused
		}, "running", "stage 1/3: 10% of traffic, paused by alice"},
		{"paused by a gate", func(r *release.Release) {
			started(r)
			r.Percent = 10
			_ = r.Transition(release.Paused, "gate")
			r.Checks = []release.Check{{Stage: 0, When: release.After, Gate: "error-rate", Status: release.CheckFailed}}
		}, "running", "stage 1/3: 10% of traffic, paused: gate error-rate failed"},
		{"paused before it started", func(r *release.Release) {
			r.History = append(r.History, release.Entry{Actor: "alice", Kind: release.EntryTransition, Phase: release.Paused})
			r.Phase = release.Paused
		}, "pending", "stage 1/3: 0% of traffic, paused by alice"},
		{"approval to finish", func(r *release.Release) {
			started(r)
			r.Stage, r.Percent = 3, 100
			_ = r.Transition(release.Paused, "done")
		}, "running", "stage 3/3: 100% of traffic, paused for approval"},
		{"finishing", func(r *release.Release) {
			started(r)
			r.Stage, r.Percent = 3, 100
		}, "running", "stage 3/3: 100% of traffic, finishing"},
		{"groups", func(r *release.Release) {
			r.Strategy = release.Groups
			started(r)
		}, "running", "stage 1/3: moving to 10% of replicas"},
		{"failed", func(r *release.Release) {
			started(r)
			r.Stage, r.Reason = 1, "cannot restore routes"
			_ = r.Transition(release.Failed, "x")
		}, "failed", "failed at stage 2/3: cannot restore routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := canary()
			tc.setup(&r)
			state, desc := gitlabstatus.ReleaseStatus(release.Event{Release: r})
			if state != tc.state || desc != tc.desc {
				t.Errorf("got %s %q, want %s %q", state, desc, tc.state, tc.desc)
			}
		})
	}
}

func deployment(id, cluster, s string) store.Deployment {
	return store.Deployment{
		ID: id, App: "web", Project: path, ProjectID: project, Environment: "dev", Cluster: cluster, Namespace: "web-dev",
		Ref: "main", SHA: s, PipelineID: 5, User: "alice", Status: store.StatusRunning, Started: time.Unix(1700000000, 0),
	}
}

func TestDeploys(t *testing.T) {
	host := func(app, env string) string {
		if app == "web" && env == "dev" {
			return "web.dev.example.com"
		}
		return ""
	}
	fake, rec, tr := setup(t, gitlabstatus.Options{Host: host})
	var seen []deployer.Reason
	n := tr.Deploys(deployer.NotifierFunc(func(_ context.Context, e deployer.Event) error {
		seen = append(seen, e.Reason)
		return nil
	}))
	send := func(reason deployer.Reason, d store.Deployment, p *store.Preview) {
		t.Helper()
		if err := n.Notify(t.Context(), deployer.Event{Reason: reason, Deployment: d, Preview: p, Message: d.Reason}); err != nil {
			t.Fatal(err)
		}
	}
	pipeline := fake.URL() + "/shop/web/-/pipelines/5"
	st := func(state, desc string) post { return post{"shipbot/dev", state, pipeline, desc} }

	ok := deployment("d000000000001", "c1", sha)
	send(deployer.ReasonDeployStarted, ok, nil)
	send(deployer.ReasonDeployStarted, ok, nil) // a resumed deploy reports its start again
	ok.Status = store.StatusSucceeded
	send(deployer.ReasonDeploySucceeded, ok, nil)
	checkPosts(t, "success", rec.take(), st("running", "deploying to web-dev"), st("success", "deployed to web-dev"))

	bad := deployment("d000000000002", "c1", sha2)
	send(deployer.ReasonDeployStarted, bad, nil)
	bad.Status, bad.Reason = store.StatusFailed, "rollout of web: progress deadline exceeded"
	send(deployer.ReasonDeployFailed, bad, nil)
	checkPosts(t, "failure", rec.take(), st("running", "deploying to web-dev"), st("failed", "failed: rollout of web: progress deadline exceeded"))

	queued := deployment("d000000000003", "c1", sha2)
	queued.Started, queued.Status, queued.Reason = time.Time{}, store.StatusSuperseded, "superseded by d000000000004 (abcdef01)"
	send(deployer.ReasonDeploySuperseded, queued, nil)
	preview := deployment("d000000000005", "c1", sha2)
	preview.Preview = "42/7"
	send(deployer.ReasonPreviewDeploying, preview, &store.Preview{Key: "42/7"})
	send(deployer.ReasonDeployStarted, preview, nil)
	checkPosts(t, "never started, preview", rec.take())

	wantEnv := []fakegitlab.Environment{{ID: 501, Name: "dev", Slug: "dev", ExternalURL: "https://web.dev.example.com", State: "available"}}
	if got := fake.Environments(project); !slices.Equal(got, wantEnv) {
		t.Errorf("environments %+v, want %+v", got, wantEnv)
	}
	wantDeps := []fakegitlab.Deployment{
		{ID: 7001, IID: 1, Environment: "dev", Ref: "main", SHA: sha, Status: "success"},
		{ID: 7002, IID: 2, Environment: "dev", Ref: "main", SHA: sha2, Status: "failed"},
	}
	if got := fake.Deployments(project); !slices.Equal(got, wantDeps) {
		t.Errorf("deployments %+v, want %+v", got, wantDeps)
	}
	wantSeen := []deployer.Reason{"DeployStarted", "DeployStarted", "DeploySucceeded", "DeployStarted", "DeployFailed", "DeploySuperseded", "PreviewDeploying", "DeployStarted"}
	if !slices.Equal(seen, wantSeen) {
		t.Errorf("next saw %v, want %v", seen, wantSeen)
	}
}

func TestDeploysTwoClusters(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{})
	n := tr.Deploys(nil)
	send := func(reason deployer.Reason, d store.Deployment) {
		t.Helper()
		if err := n.Notify(t.Context(), deployer.Event{Reason: reason, Deployment: d, Message: d.Reason}); err != nil {
			t.Fatal(err)
		}
	}
	pipeline := fake.URL() + "/shop/web/-/pipelines/5"
	st := func(state, desc string) post { return post{"shipbot/dev", state, pipeline, desc} }
	a, b := deployment("d000000000001", "a", sha), deployment("d000000000002", "b", sha)
	send(deployer.ReasonDeployStarted, a)
	send(deployer.ReasonDeployStarted, b)
	send(deployer.ReasonDeploySucceeded, a)
	b.Reason = "superseded by d000000000003 (89abcdef)"
	send(deployer.ReasonDeploySuperseded, b)
	// The environment stays running until both end, then shows the worst;
	// GitLab refuses running -> running, so nothing is posted in between.
	checkPosts(t, "two clusters", rec.take(),
		st("running", "deploying to web-dev"),
		st("canceled", "b: canceled: superseded by d000000000003 (89abcdef)"),
	)
	// Both started "running" with the same ref and sha: GitLab hands the
	// second the first's record, so the environment shows one deployment.
	got := fake.Deployments(project)
	if len(got) != 1 || got[0].Status != "canceled" {
		t.Errorf("deployments %+v", got)
	}
}

func TestFailedPostIsRetriedByTheNextEvent(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{})
	n := tr.Deploys(nil)
	d := deployment("d000000000001", "c1", sha)
	fake.FailNext("POST", "/projects/42/statuses", http.StatusInternalServerError)
	err := n.Notify(t.Context(), deployer.Event{Reason: deployer.ReasonDeployStarted, Deployment: d})
	var se *gitlab.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInternalServerError {
		t.Fatalf("got %v, want the 500", err)
	}
	if err := n.Notify(t.Context(), deployer.Event{Reason: deployer.ReasonDeployStarted, Deployment: d}); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 2 || got[0] != got[1] {
		t.Errorf("posts %q, want the same post twice", got)
	}
	if got := fake.Statuses(project, sha); len(got) != 1 || got[0].State != "running" {
		t.Errorf("statuses %+v", got)
	}
	if got := fake.Deployments(project); len(got) != 1 {
		t.Errorf("deployments %+v, want one", got)
	}
}

// slow is a GitLab that answers nothing until the caller gives up.
type slow struct{ gitlabstatus.GitLab }

func (slow) ProjectID(ctx context.Context, _ string) (int64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func TestTimeout(t *testing.T) {
	tr := gitlabstatus.New(gitlabstatus.Options{API: slow{}, Timeout: 50 * time.Millisecond})
	start := time.Now()
	err := tr.Notify(t.Context(), release.Event{Reason: release.ReasonQueued, Release: canary()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Notify took %s", d)
	}
}

func TestConfigHost(t *testing.T) {
	cfg := &config.Config{Apps: []config.App{{
		Name: "web", Params: config.Params{Host: "web.example.com"},
		Environments: map[string]config.AppEnvironment{
			"dev":   {Params: config.Params{Host: "web.dev.example.com"}},
			"prod1": {},
		},
	}}}
	host := gitlabstatus.ConfigHost(cfg)
	for _, tc := range []struct{ app, env, want string }{
		{"web", "dev", "web.dev.example.com"},
		{"web", "prod1", "web.example.com"},
		{"web", "staging", ""}, // not an environment of the app
		{"api", "dev", ""},
	} {
		if got := host(tc.app, tc.env); got != tc.want {
			t.Errorf("host(%s, %s) = %q, want %q", tc.app, tc.env, got, tc.want)
		}
	}
}

func TestStatusIsPostedWhenTheDeploymentRecordFails(t *testing.T) {
	fake, rec, tr := setup(t, gitlabstatus.Options{})
	fake.FailNext("POST", "/projects/42/deployments", http.StatusInternalServerError)
	d := deployment("d000000000001", "c1", sha)
	err := tr.Deploys(nil).Notify(t.Context(), deployer.Event{Reason: deployer.ReasonDeployStarted, Deployment: d})
	if err == nil {
		t.Error("no error for the failed deployment record")
	}
	if got := rec.take(); len(got) != 1 || got[0].state != "running" {
		t.Errorf("posts %q, want running", got)
	}
	// The record is made by the deploy's next event.
	d.Status = store.StatusSucceeded
	if err := tr.Deploys(nil).Notify(t.Context(), deployer.Event{Reason: deployer.ReasonDeploySucceeded, Deployment: d}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Deployments(project); len(got) != 1 || got[0].Status != "success" {
		t.Errorf("deployments %+v", got)
	}
}

package inbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/bot/mergerequest"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

const (
	token     = "glpat-inbox-test"
	projectID = int64(9)
	project   = "shop/web"
	mrIID     = int64(5)
	userID    = int64(701)
)

const cfgText = `gitlab:
  baseURL: https://gitlab.example.com
  webhookSecret: s3cret
clusters:
  - name: local
    kubeconfig: /tmp/kubeconfig
environments:
  - name: dev
    clusters: [local]
    namespace: apps-dev
    refs:
      branches: ['^dev$']
apps:
  - name: web
    project: shop/web
    environments:
      dev: {}
`

type wakeFunc func()

func (f wakeFunc) Wake() { f() }

// TestCommandNeverHoldsUpADeploy is the fault of issue 10: a GitLab whose
// note and member endpoints hang, and a /status just before a dev
// pipeline. The pipeline's deploy is recorded while the command is still
// stuck in GitLab, and the command answers once GitLab does.
func TestCommandNeverHoldsUpADeploy(t *testing.T) {
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(projectID, project)
	fake.SetMember(projectID, userID, int(gitlab.Maintainer))
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: mrIID, SourceBranch: "feature", HeadSHA: strings.Repeat("1", 40)})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the fake closes, which waits for its requests
	hang := func() {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	fake.BeforeNext("GET", fmt.Sprintf("projects/%d/merge_requests/%d/notes/", projectID, mrIID), hang)
	fake.BeforeNext("GET", fmt.Sprintf("projects/%d/members/", projectID), hang)
	client, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("shipbot.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cmds := &mergerequest.Commands{API: client, Previews: deployer.Previewer{Config: cfg}, Log: quiet, Now: time.Now}
	cw := mergerequest.NewCommandWorker(mergerequest.CommandWorker{Commands: cmds, Store: st, Timeout: time.Minute, Log: quiet})
	iw := inbox.NewWorker(inbox.Worker{Config: cfg, Store: st, Deploys: wakeFunc(func() {}), Notes: cw, Log: quiet})

	mr := fixtures.MR{ProjectID: projectID, Project: project, IID: mrIID, UserID: userID, Username: "mia"}
	noteID := fake.AddNote(projectID, mrIID, fakegitlab.Note{Body: "/status", Author: "mia", AuthorID: userID})
	for _, d := range []store.Delivery{
		{Key: "note", Event: "Note Hook", Body: fixtures.Note(t, mr, noteID, "/status", "create")},
		{Key: "pipeline", Event: "Pipeline Hook", Body: fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: projectID, Project: project,
			Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 77})},
	} {
		d.ReceivedAt = time.Now()
		if _, _, err := st.Accept(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() { cancel(); <-done; <-done }) // workers stop before the store closes and after GitLab answers
	go func() { _ = iw.Run(ctx); done <- struct{}{} }()
	go func() { _ = cw.Run(ctx); done <- struct{}{} }()

	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the command never asked GitLab about the comment")
	}
	// GitLab holds the command's call until free: the deploy is recorded
	// all the same.
	fixtures.Eventually(t, 15*time.Second, "the dev deploy recorded", func() error {
		ds, err := st.Deployments(func(d store.Deployment) bool { return d.Environment == "dev" && d.PipelineID == 77 })
		if err != nil || len(ds) != 1 {
			return fmt.Errorf("%d deployments for pipeline 77 (%v)", len(ds), err)
		}
		return nil
	})
	if n := st.InboxDepth(); n != 0 {
		t.Errorf("inbox depth %d while the command waits on GitLab; want 0", n)
	}
	running, err := st.Commands(store.CommandRunning, 10)
	if err != nil || len(running) != 1 {
		t.Fatalf("running commands: %+v %v; want the /status, still waiting on GitLab", running, err)
	}
	// Once GitLab answers, so does the command, and it is done with.
	free()
	fixtures.Eventually(t, 15*time.Second, "a reply to /status", func() error {
		for _, n := range fake.Notes(projectID, mrIID) {
			if strings.Contains(n.Body, "shipbot:reply") {
				return nil
			}
		}
		return fmt.Errorf("no reply yet")
	})
	if left, err := st.Commands(store.CommandRunning, 10); err != nil || len(left) != 0 {
		t.Errorf("commands still running after the reply: %+v %v", left, err)
	}
}

package inbox_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/bot/mergerequest"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// TestCommandNeverHoldsUpADeploy is the fault of issue 10: a GitLab whose
// note and member endpoints hang, and a /status just before a dev
// pipeline. The pipeline's deploy is recorded while the command is still
// stuck in GitLab, and the command answers once GitLab does.
func TestCommandNeverHoldsUpADeploy(t *testing.T) {
	r := newRig(t, cfgText)
	r.gl.SetProjectPath(projectID, project)
	r.gl.SetMember(projectID, userID, int(gitlab.Maintainer))
	r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: mrIID, SourceBranch: "feature", HeadSHA: strings.Repeat("1", 40)})
	entered := make(chan struct{}, 1)
	r.hold("GET", fmt.Sprintf("projects/%d/merge_requests/%d/notes/", projectID, mrIID), entered)
	r.hold("GET", fmt.Sprintf("projects/%d/members/", projectID), entered)
	cmds := &mergerequest.Commands{API: r.client, Previews: deployer.Previewer{Config: r.cfg}, Log: r.log, Now: time.Now}
	cw := mergerequest.NewCommandWorker(mergerequest.CommandWorker{Commands: cmds, Store: r.st, Timeout: time.Minute, Log: r.log})
	iw := inbox.NewWorker(inbox.Worker{Config: r.cfg, Store: r.st, Deploys: wakeFunc(func() {}), Notes: cw, Log: r.log})

	mr := fixtures.MR{ProjectID: projectID, Project: project, IID: mrIID, UserID: userID, Username: "mia"}
	noteID := r.gl.AddNote(projectID, mrIID, fakegitlab.Note{Body: "/status", Author: "mia", AuthorID: userID})
	r.deliver(
		store.Delivery{Key: "note", Event: "Note Hook", Body: fixtures.Note(t, mr, noteID, "/status", "create")},
		store.Delivery{Key: "pipeline", Event: "Pipeline Hook", Body: fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: projectID, Project: project,
			Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 77})},
	)
	r.run(iw.Run, cw.Run)

	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the command never asked GitLab about the comment")
	}
	// GitLab holds the command's call until free: the deploy is recorded
	// all the same.
	fixtures.Eventually(t, 15*time.Second, "the dev deploy recorded", func() error {
		ds, err := r.st.Deployments(func(d store.Deployment) bool { return d.Environment == "dev" && d.PipelineID == 77 })
		if err != nil || len(ds) != 1 {
			return fmt.Errorf("%d deployments for pipeline 77 (%v)", len(ds), err)
		}
		// The depth counter drops just after the commit that recorded it.
		if n := r.st.InboxDepth(); n != 0 {
			return fmt.Errorf("inbox depth %d while the command waits on GitLab; want 0", n)
		}
		return nil
	})
	running, err := r.st.Commands(store.CommandRunning, 10)
	if err != nil || len(running) != 1 {
		t.Fatalf("running commands: %+v %v; want the /status, still waiting on GitLab", running, err)
	}
	// Once GitLab answers, so does the command, and it is done with.
	r.free()
	fixtures.Eventually(t, 15*time.Second, "a reply to /status", func() error {
		for _, n := range r.gl.Notes(projectID, mrIID) {
			if strings.Contains(n.Body, "shipbot:reply") {
				return nil
			}
		}
		return fmt.Errorf("no reply yet")
	})
	if left, err := r.st.Commands(store.CommandRunning, 10); err != nil || len(left) != 0 {
		t.Errorf("commands still running after the reply: %+v %v", left, err)
	}
}

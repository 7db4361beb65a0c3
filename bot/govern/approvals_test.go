package govern_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

type wakeFunc func()

func (f wakeFunc) Wake() { f() }

// deliver puts a webhook in the store's inbox and runs the inbox worker
// until it has processed it and woken the releases.
func (r *deployRig) deliver(event string, body []byte) {
	r.t.Helper()
	woken := make(chan struct{}, 1)
	w := inbox.NewWorker(inbox.Worker{Config: r.cfg, Store: r.store, Deploys: wakeFunc(func() {}), Now: r.clock.Now,
		Releases: wakeFunc(func() { woken <- struct{}{} }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, _, err := r.store.Accept(r.t.Context(), store.Delivery{Key: event + string(body[len(body)-40:]) + r.clock.Now().String(), Event: event, Body: body, ReceivedAt: r.clock.Now()}); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(r.t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		r.t.Fatal("the worker did not process the webhook")
	}
	cancel()
	<-done
}

// approve approves MR !5 as user in GitLab and delivers its webhook.
func (r *deployRig) approve(userID int64, user string) {
	r.t.Helper()
	r.gl.Approve(projectID, 5, userID, user)
	r.deliver("Merge Request Hook", fixtures.MergeRequest(r.t, fixtures.MR{ProjectID: projectID, Project: project, IID: 5,
		Action: "approval", State: "merged", SourceBranch: "feature", HeadSHA: v120, Username: user, UserID: userID}))
}

// step steps release id once and reads it back.
func (r *deployRig) step(id string) (release.Release, release.Result) {
	r.t.Helper()
	res, err := r.engine.Step(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	rel, _ := r.engine.Get(r.t.Context(), id)
	return rel, res
}

func TestApprovalWebhookContinuesTheWaitingStage(t *testing.T) {
	r := newDeployRigSpec(t, `{strategy: groups, steps: [50, 100], gates: [{name: reviewed, steps: [50], mergeRequestApproval: {approvals: 2}}]}`)
	r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: 5, State: "merged", SourceBranch: "feature", HeadSHA: v120, MergeCommitSHA: v120})
	r.gl.SetCommitMergeRequests(projectID, v120, 5)
	ctx := t.Context()
	first, err := r.deploys.Deploy(ctx, mia, project, "v1.0.0", "prod1")
	if err != nil {
		t.Fatal(err)
	}
	if done := r.drive(first[0].ID); done.Phase != release.Succeeded {
		t.Fatalf("first release: %s %s", done.Phase, done.Reason)
	}

	rels, err := r.deploys.Deploy(ctx, mia, project, "v1.2.0", "prod1")
	if err != nil {
		t.Fatal(err)
	}
	id := rels[0].ID
	// Step until stage 1 is at 50 % and waits for the gate.
	var rel release.Release
	for i := 0; i < 200; i++ {
		var res release.Result
		if rel, res = r.step(id); rel.Phase == release.Verifying && rel.Checks[len(rel.Checks)-1].Gate == "reviewed" {
			break
		}
		r.clock.Advance(min(res.RequeueAfter, 2*time.Second))
		time.Sleep(10 * time.Millisecond)
	}
	gate := rel.Checks[len(rel.Checks)-1]
	if rel.Phase != release.Verifying || rel.Percent != 50 || gate.Status != release.CheckRunning || gate.Message != "0 of 2 approvals on !5" {
		t.Fatalf("waiting for approvals: %s at %d %%, gate %+v", rel.Phase, rel.Percent, gate)
	}

	r.approve(811, "ann")
	if rel, _ = r.step(id); rel.Phase != release.Verifying || rel.Checks[len(rel.Checks)-1].Message != "1 of 2 approvals on !5 (ann)" {
		t.Fatalf("after one approval: %s, gate %+v", rel.Phase, rel.Checks[len(rel.Checks)-1])
	}
	// GitLab has the second approval, but no webhook came: the gate waits
	// for its next poll, a minute away on the engine's clock.
	r.gl.Approve(projectID, 5, 812, "bob")
	if rel, _ = r.step(id); rel.Checks[len(rel.Checks)-1].Message != "1 of 2 approvals on !5 (ann)" {
		t.Fatalf("without a webhook the gate was asked again: %+v", rel.Checks[len(rel.Checks)-1])
	}
	r.deliver("Merge Request Hook", fixtures.MergeRequest(t, fixtures.MR{ProjectID: projectID, Project: project, IID: 5,
		Action: "approved", State: "merged", SourceBranch: "feature", HeadSHA: v120, Username: "bob", UserID: 812}))
	rel, _ = r.step(id)
	if rel.Stage < 1 || !passed(rel, "reviewed", "2 of 2 approvals on !5 (ann, bob)") {
		t.Fatalf("after the approval webhook: stage %d, %s, checks %+v", rel.Stage+1, rel.Phase, rel.Checks)
	}
	if done := r.drive(id); done.Phase != release.Succeeded {
		t.Fatalf("release ended %s: %s", done.Phase, done.Reason)
	}
}

func passed(r release.Release, gate, msg string) bool {
	for _, c := range r.Checks {
		if c.Gate == gate && c.Status == release.CheckPassed && c.Message == msg {
			return true
		}
	}
	return false
}

func TestApprovalGateWithoutAMergeRequestFails(t *testing.T) {
	r := newDeployRigSpec(t, `{strategy: groups, steps: [50, 100], gates: [{name: reviewed, steps: [50], onFailure: pause, mergeRequestApproval: {approvals: 1}}]}`)
	first, _ := r.deploys.Deploy(t.Context(), mia, project, "v1.0.0", "prod1")
	r.drive(first[0].ID)
	rels, err := r.deploys.Deploy(t.Context(), mia, project, "v1.2.0", "prod1")
	if err != nil {
		t.Fatal(err)
	}
	done := r.drive(rels[0].ID)
	if done.Phase != release.Paused || done.Reason != "gate reviewed failed: no merge request produced dddddddd, so none can approve it" {
		t.Errorf("no merge request: %s, %q", done.Phase, done.Reason)
	}
}

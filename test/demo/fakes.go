package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// The GitLab project the story's webhooks come from.
const (
	projectID = 42
	project   = "shop/web"
)

// mr is the merge request that gets a preview.
var mr = fixtures.MR{ProjectID: projectID, Project: project, IID: 7, Action: "open", State: "opened",
	SourceBranch: "feature-checkout", HeadSHA: sha('c'), Username: "bob", UserID: 502}

// startGitLab starts the fake GitLab API that shipbot posts its merge
// request comments, commit statuses, environments and deployment records to.
func startGitLab() *fakegitlab.Server {
	gl := fakegitlab.Start(gitlabToken)
	gl.SetProjectPath(projectID, project)
	return gl
}

// openMR makes the fake GitLab know the merge request, as shipbot's
// reconciler asks its API, then sends its webhook and its pipeline's.
func (d *demo) openMR(ctx context.Context) error {
	d.gitlab.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: mr.IID, Title: "Faster checkout",
		SourceBranch: mr.SourceBranch, TargetBranch: "dev", HeadSHA: mr.HeadSHA, Author: mr.Username})
	body, err := fixtures.MergeRequestBody(mr)
	if err != nil {
		return err
	}
	if err := d.deliver(ctx, "Merge Request Hook", fmt.Sprintf("!%d opened by %s", mr.IID, mr.Username), body); err != nil {
		return err
	}
	if body, err = fixtures.MRPipelineBody(mr, 2001); err != nil {
		return err
	}
	return d.deliver(ctx, "Pipeline Hook", fmt.Sprintf("!%d's pipeline 2001 succeeded", mr.IID), body)
}

// pipeline sends the webhook of a successful pipeline on a branch or a tag.
func (d *demo) pipeline(ctx context.Context, b fixtures.Build) error {
	body, err := fixtures.PipelineSuccessBody(b)
	if err != nil {
		return err
	}
	return d.deliver(ctx, "Pipeline Hook", fmt.Sprintf("pipeline %d on %s succeeded, by %s", b.PipelineID, b.Ref, b.Username), body)
}

// deliver posts a webhook as GitLab does, each with its own delivery UUID,
// and says what shipbot answered.
func (d *demo) deliver(ctx context.Context, event, what string, body []byte) error {
	d.deliveries++
	code, reply, err := fixtures.Deliver(ctx, d.o.listen, secret, event, body,
		"X-Gitlab-Event-UUID", fmt.Sprintf("demo-delivery-%d", d.deliveries))
	if err != nil {
		return err
	}
	say(fmt.Sprintf("%s: %s → HTTP %d %s", event, what, code, strings.TrimSpace(string(reply))))
	if code != http.StatusOK {
		return fmt.Errorf("%s answered %d", event, code)
	}
	return nil
}

// sha is a commit id of one repeated hex digit.
func sha(c byte) string { return strings.Repeat(string(c), 40) }

// gitlabRecord shows what shipbot left on the fake GitLab, and fails on any
// call the fake has no route for, which a real GitLab would refuse too.
func (d *demo) gitlabRecord() error {
	chapter("what shipbot recorded on GitLab (the fake's state)")
	for _, e := range d.gitlab.Environments(projectID) {
		fmt.Printf("  environment  %-12s %-9s %s\n", e.Name, e.State, e.ExternalURL)
	}
	for _, dep := range d.gitlab.Deployments(projectID) {
		fmt.Printf("  deployment   #%d to %-12s %-16s %s\n", dep.IID, dep.Environment, dep.Ref, dep.Status)
	}
	for n := range d.version {
		if st := d.gitlab.Statuses(projectID, tagSHA(n)); len(st) > 0 {
			last := st[len(st)-1]
			fmt.Printf("  status       v1.%d.0  %s %s: %s\n", n, last.Name, last.State, last.Description)
		}
	}
	if u := d.gitlab.Unexpected(); len(u) > 0 {
		return fmt.Errorf("shipbot made GitLab calls the fake has no route for: %v", u)
	}
	fmt.Printf("  %d API calls, none unexpected\n", d.gitlab.Calls())
	return nil
}

// tagSHA is the commit tag v1.<n>.0 is built from.
func tagSHA(n int) string { return sha("0123456789abcdef"[(n+1)%16]) }

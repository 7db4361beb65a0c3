package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
)

const previewChannel = "C0PREVIEW"

// previewFixture is merge request !42 of shop/checkout, its preview at the
// MR's head commit.
func previewFixture(status store.PreviewStatus) store.Preview {
	return store.Preview{
		Key: store.PreviewKey(7, 42), ProjectID: 7, Project: "shop/checkout", IID: 42, Title: "Add <gift cards>",
		SourceBranch: "gift-cards", HeadSHA: "0123456789abcdef", WebURL: "https://gitlab.example.com/shop/checkout/-/merge_requests/42",
		Wanted: true, Cluster: "eu-1", Namespace: "preview-checkout-42", Status: status,
		URL: "https://mr-42-checkout.preview.example.com",
	}
}

// previewEvent is the event the engine emits when app's deployment into the
// preview ends with p.
func previewEvent(reason deployer.Reason, app string, p store.Preview) deployer.Event {
	d := store.Deployment{ID: "d-" + app, App: app, Project: p.Project, Environment: "review", Cluster: p.Cluster,
		Namespace: p.Namespace, SHA: p.HeadSHA, Preview: p.Key}
	return deployer.Event{Reason: reason, Deployment: d, Preview: &p, Message: p.Reason}
}

func failedPreview(reason string) store.Preview {
	p := previewFixture(store.PreviewFailed)
	p.Reason = reason
	return p
}

// TestPreviewMessageFollowsTheMergeRequest: one message per merge request in
// the preview environment's channel, posted when it is ready, edited when
// it fails and when it is ready again, after a restart too; a repeat of the
// same state (a second app of the project) changes nothing.
func TestPreviewMessageFollowsTheMergeRequest(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	e.channels = map[string]string{"review": previewChannel}
	e.restart(ModeHTTP)
	ctx := context.Background()
	notify := func(ev deployer.Event) {
		t.Helper()
		if err := e.app.Previews().Notify(ctx, ev); err != nil {
			t.Fatalf("%s: %v", ev.Reason, err)
		}
	}

	notify(previewEvent(deployer.ReasonPreviewReady, "checkout", previewFixture(store.PreviewReady)))
	notify(previewEvent(deployer.ReasonPreviewReady, "checkout-worker", previewFixture(store.PreviewReady)))
	msgs := e.slack.Channel(previewChannel)
	if len(msgs) != 1 || msgs[0].Edits != 0 {
		t.Fatalf("want one message, never edited; got %+v", msgs)
	}
	ready := msgs[0].Text
	for _, want := range []string{"Preview ready", "https://mr-42-checkout.preview.example.com",
		"<https://gitlab.example.com/shop/checkout/-/merge_requests/42|!42 Add &lt;gift cards&gt;>", "`01234567`"} {
		if !strings.Contains(ready, want) {
			t.Errorf("ready message %q does not contain %q", ready, want)
		}
	}
	if n := len(e.slack.Channel(testChannel)); n != 0 {
		t.Errorf("default channel got %d messages, want none: previews are routed to %s", n, previewChannel)
	}

	e.restart(ModeHTTP)
	notify(previewEvent(deployer.ReasonPreviewFailed, "checkout", failedPreview("pods not ready: ImagePullBackOff <registry>")))
	notify(previewEvent(deployer.ReasonPreviewFailed, "checkout", failedPreview("pods not ready: ImagePullBackOff <registry>")))
	msgs = e.slack.Channel(previewChannel)
	if len(msgs) != 1 || msgs[0].Edits != 1 {
		t.Fatalf("want the message edited once for the failure; got %+v", msgs)
	}
	if got := msgs[0].Text; !strings.HasPrefix(got, ":x: Preview failed") || !strings.Contains(got, "ImagePullBackOff &lt;registry&gt;") {
		t.Errorf("failed message = %q, want the reason, escaped", got)
	}

	notify(previewEvent(deployer.ReasonPreviewReady, "checkout", previewFixture(store.PreviewReady)))
	msgs = e.slack.Channel(previewChannel)
	if len(msgs) != 1 || msgs[0].Edits != 2 || msgs[0].Text != ready {
		t.Errorf("want the message edited back to ready; got %+v", msgs)
	}
}

// TestPreviewMessageOnANewCommit: a new head commit that is ready again is
// news, so the message is edited to name it.
func TestPreviewMessageOnANewCommit(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	p := previewFixture(store.PreviewReady)
	if err := e.app.Previews().Notify(ctx, previewEvent(deployer.ReasonPreviewReady, "checkout", p)); err != nil {
		t.Fatal(err)
	}
	p.HeadSHA = "fedcba9876543210"
	if err := e.app.Previews().Notify(ctx, previewEvent(deployer.ReasonPreviewReady, "checkout", p)); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 || msgs[0].Edits != 1 || !strings.Contains(msgs[0].Text, "`fedcba98`") {
		t.Errorf("want one message edited to the new commit; got %+v", msgs)
	}
}

// TestPreviewIgnoresOtherEvents: deploys and the other preview reasons post nothing.
func TestPreviewIgnoresOtherEvents(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	p := previewFixture(store.PreviewDeploying)
	events := []deployer.Event{
		{Reason: deployer.ReasonDeploySucceeded, Deployment: store.Deployment{ID: "d1", App: "checkout", Environment: "prod"}},
		{Reason: deployer.ReasonDeployFailed, Deployment: store.Deployment{ID: "d2", App: "checkout", Environment: "prod"}, Message: "boom"},
		{Reason: deployer.ReasonPreviewReady, Deployment: store.Deployment{ID: "d3"}}, // no preview record
		previewEvent(deployer.ReasonPreviewDeploying, "checkout", p),
		previewEvent(deployer.ReasonPreviewStopped, "checkout", p),
	}
	for _, ev := range events {
		if err := e.app.Previews().Notify(ctx, ev); err != nil {
			t.Errorf("%s: %v", ev.Reason, err)
		}
	}
	if n := len(e.slack.Channel(testChannel)); n != 0 {
		t.Errorf("channel got %d messages, want none", n)
	}
}

// TestPreviewRepostsDeletedMessage: when someone deleted the message, the
// next change posts a new one, and Slack's errors are returned.
func TestPreviewRepostsDeletedMessage(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ctx := context.Background()
	if err := e.app.Previews().Notify(ctx, previewEvent(deployer.ReasonPreviewReady, "checkout", previewFixture(store.PreviewReady))); err != nil {
		t.Fatal(err)
	}
	first := e.slack.Channel(testChannel)[0]
	e.slack.Delete(testChannel, first.TS)

	e.slack.set(func(f *fakeSlack) { f.failPost = "channel_not_found" })
	err := e.app.Previews().Notify(ctx, previewEvent(deployer.ReasonPreviewFailed, "checkout", failedPreview("boom")))
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("Notify = %v, want Slack's error", err)
	}
	e.slack.set(func(f *fakeSlack) { f.failPost = "" })
	if err := e.app.Previews().Notify(ctx, previewEvent(deployer.ReasonPreviewFailed, "checkout", failedPreview("boom"))); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 || msgs[0].TS == first.TS || !strings.Contains(msgs[0].Text, "boom") {
		t.Errorf("want one new message with the failure; got %+v", msgs)
	}
}

// TestPreviewConcurrentAppsPostOnce: the apps of one merge request that
// become ready at once still make one message.
func TestPreviewConcurrentAppsPostOnce(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			ev := previewEvent(deployer.ReasonPreviewReady, fmt.Sprintf("app-%d", i), previewFixture(store.PreviewReady))
			if err := e.app.Previews().Notify(context.Background(), ev); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if msgs := e.slack.Channel(testChannel); len(msgs) != 1 || msgs[0].Edits != 0 {
		t.Errorf("want 1 message never edited, got %+v", msgs)
	}
}

// TestRefusedBuildIsAnnounced: a build refused for its .shipbot.yaml is
// posted in the default channel with the build and every problem, escaped.
func TestRefusedBuildIsAnnounced(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	ev := deployer.Event{Reason: deployer.ReasonConfigRefused, MergeRequest: 5, Deployment: store.Deployment{
		Project: "shop/site", Ref: "dev", SHA: "cccccccccccccccccccccccccccccccccccccccc", PipelineID: 201,
	}, Message: `.shipbot.yaml:8: apps[0].environments.canary: environment "canary" is not open <here>` + "\n" + `.shipbot.yaml:3: apps[0].release: may not set release`}
	if err := e.app.Previews().Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	msgs := e.slack.Channel(testChannel)
	if len(msgs) != 1 {
		t.Fatalf("want one message in the default channel; got %+v", msgs)
	}
	for _, want := range []string{"Not deployed", "*shop/site* `dev` at `cccccccc` (!5)", "nothing was applied",
		".shipbot.yaml:8: apps[0].environments.canary", "&lt;here&gt;", ".shipbot.yaml:3: apps[0].release"} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("message %q does not contain %q", msgs[0].Text, want)
		}
	}
}

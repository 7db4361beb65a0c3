package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// tell runs the story's chapters in order, each waiting for what the one
// before caused, then hands the canary to the keys (or to the script).
func (d *demo) tell(ctx context.Context, keys io.Reader) error {
	for _, chapter := range []func(context.Context) error{d.devDeploy, d.preview, d.firstTag} {
		if err := chapter(ctx); err != nil {
			return err
		}
	}
	rel, err := d.canary(ctx)
	if err != nil {
		return err
	}
	d.whereToLook(rel)
	if d.o.once {
		err = d.unattended(ctx, rel)
	} else {
		err = d.interactive(ctx, rel, keys)
	}
	if err != nil {
		return err
	}
	return d.gitlabRecord()
}

// devDeploy replays a dev pipeline and shows what shipbot applied.
func (d *demo) devDeploy(ctx context.Context) error {
	chapter("1 · a pipeline on dev succeeds: shipbot deploys it")
	err := d.pipeline(ctx, fixtures.Build{ProjectID: projectID, Project: project, Ref: "dev",
		SHA: "4f2d9c1e8b7a6d5c4b3a29181716151413121110", PipelineID: 1234, Username: "alice"})
	if err != nil {
		return err
	}
	if err := d.waitDeployment(ctx, "dev"); err != nil {
		return err
	}
	dep, err := d.cluster.Client().AppsV1().Deployments(devNamespace).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		return err
	}
	reportDeploy(dep)
	return nil
}

// waitDeployment waits, through the API, for env's deploy record to end well.
func (d *demo) waitDeployment(ctx context.Context, env string) error {
	return poll(ctx, d.o.timeout, "the "+env+" deploy", func() (bool, error) {
		page, err := d.api.Deployments(ctx, api.RecordQuery{Environment: env})
		if err != nil || len(page.Items) == 0 {
			return false, err
		}
		switch rec := page.Items[0]; rec.Status {
		case store.StatusFailed:
			return false, fmt.Errorf("deploy %s failed: %s", rec.ID, rec.Reason)
		case store.StatusSucceeded:
			return true, nil
		}
		return false, nil
	})
}

func reportDeploy(d *appsv1.Deployment) {
	a := d.Annotations
	fmt.Printf(`
  Deployment   %s/%s, %d/%d replicas available
  image        %s
  commit       %s (ref %s)
  pipeline     %s, job %s, by %s
  record       %s in the bbolt store
`, d.Namespace, d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image,
		a["shipbot.io/sha"], a["shipbot.io/ref"], a["shipbot.io/pipeline-id"], a["shipbot.io/job-id"], a["shipbot.io/deployed-by"],
		a["shipbot.io/deployment"])
}

// preview opens the merge request and shows its preview and the comment
// shipbot posted on it through the (fake) GitLab API.
func (d *demo) preview(ctx context.Context) error {
	chapter(fmt.Sprintf("2 · merge request !%d: shipbot gives it a preview and comments on it", mr.IID))
	if err := d.openMR(ctx); err != nil {
		return err
	}
	p, err := d.waitPreview(ctx)
	if err != nil {
		return err
	}
	body, err := d.waitComment(ctx, p)
	if err != nil {
		return err
	}
	fmt.Printf("\n  preview      %s\n  namespace    %s, commit %.8s\n  comment      posted on !%d as GitLab note %d:\n\n%s\n",
		p.URL, p.Namespace, p.DeployedSHA, mr.IID, p.NoteID, indent(body, "    │ "))
	return nil
}

// waitPreview waits, through the API, for the merge request's preview to be ready.
func (d *demo) waitPreview(ctx context.Context) (api.Preview, error) {
	var p api.Preview
	err := poll(ctx, d.o.timeout, fmt.Sprintf("!%d's preview", mr.IID), func() (bool, error) {
		page, err := d.api.Previews(ctx, api.RecordQuery{Project: project})
		if err != nil || len(page.Items) == 0 {
			return false, err
		}
		p = page.Items[0]
		if p.Status == store.PreviewFailed {
			return false, fmt.Errorf("preview failed: %s", p.Reason)
		}
		return p.Status == store.PreviewReady, nil
	})
	return p, err
}

// waitComment waits for the fake GitLab to hold shipbot's comment with the
// preview's URL: shipbot edits one comment as the preview moves on.
func (d *demo) waitComment(ctx context.Context, p api.Preview) (string, error) {
	var body string
	err := poll(ctx, d.o.timeout, "the preview comment on !"+fmt.Sprint(mr.IID), func() (bool, error) {
		for _, n := range d.gitlab.Notes(projectID, mr.IID) {
			if n.ID == p.NoteID {
				body = n.Body
			}
		}
		return strings.Contains(body, p.URL), nil
	})
	return body, err
}

// firstTag releases v1.0.0: with nothing serving in prod there is no
// traffic to shift, so it goes straight to its last stage.
func (d *demo) firstTag(ctx context.Context) error {
	chapter("3 · tag v1.0.0: nothing serves in prod yet, so it goes live in one step")
	if err := d.prepareProd(ctx); err != nil {
		return err
	}
	rel, err := d.tag(ctx)
	if err != nil {
		return err
	}
	rel, err = d.follow(ctx, rel.ID, "v1.0.0's release to end", ended)
	if err == nil && rel.Phase != release.Succeeded {
		err = fmt.Errorf("v1.0.0's release ended %s: %s", rel.Phase, rel.Reason)
	}
	return err
}

// canary releases v1.1.0, which stops at 10 % for a person.
func (d *demo) canary(ctx context.Context) (api.Release, error) {
	chapter("4 · tag v1.1.0: an Istio canary, 10 % → 50 % → 100 %, pausing for a person")
	rel, err := d.tag(ctx)
	if err != nil {
		return rel, err
	}
	return d.follow(ctx, rel.ID, "the canary to pause at 10 %", settled)
}

func (d *demo) whereToLook(rel api.Release) {
	fmt.Printf(`
where to look while it runs:
  dashboard    http://%[1]s/   (this release: %[2]s)
  API          curl -sH 'Authorization: Bearer %[3]s' http://%[1]s/api/v1/releases/%[4]s
  cluster      kubectl --kubeconfig %[5]s -n %[6]s get virtualservice,deploy,pods
  shipbot log  %[7]s
`, d.o.listen, d.dashboardURL(rel.ID), apiToken, rel.ID, d.cluster.KubeconfigPath(), prodNamespace, d.logPath())
}

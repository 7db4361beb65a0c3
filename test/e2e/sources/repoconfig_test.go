package sources

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// siteFile is project shop/site's .shipbot.yaml; more goes under its
// environments.
func siteFile(more string) string {
	return `apps:
  - name: site
    registry: registry.example.com
    source:
      helm: {chart: deploy/chart, valuesFiles: [deploy/values.yaml]}
    environments:
      dev: {replicas: 2}
` + more
}

// TestRepoConfig: project shop/site declares its app in its own
// .shipbot.yaml, which shipbot's config opens to it for dev only. A commit
// whose file keeps to that deploys from the repository at its sha; one
// whose file asks for canary too is refused, with the file and line, on the
// merge request, in the commit's status, and nothing of it is applied.
func TestRepoConfig(t *testing.T) {
	t.Parallel()
	gl := fakegitlab.New(t, "repo-token")
	gl.SetProjectPath(10, "shop/site")
	good, bad := strings.Repeat("b", 40), strings.Repeat("c", 40)
	files := repoFiles(t, "b")
	files[".shipbot.yaml"] = siteFile("")
	gl.SetCommit(10, good, files)
	files = repoFiles(t, "c")
	files[".shipbot.yaml"] = siteFile("      canary: {replicas: 2}\n")
	gl.SetCommit(10, bad, files)

	r := startSite(t, gl)
	post := func(sha string, id int64) {
		body := fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: 10, Project: "shop/site", Ref: "dev",
			SHA: sha, PipelineID: id, Username: "dev-person"})
		if code := fixtures.PostWebhook(t, r.m.Addr(), secret, "Pipeline Hook", body); code != http.StatusOK {
			t.Fatalf("pipeline %d: webhook answered %d", id, code)
		}
	}

	post(good, 200)
	fixtures.Eventually(t, 90*time.Second, "site's dev deploy", func() error {
		all, err := r.m.Store().Deployments(func(d store.Deployment) bool { return d.PipelineID == 200 })
		switch {
		case err != nil || len(all) == 0:
			return fmt.Errorf("no record yet (%v)", err)
		case all[0].Status != store.StatusSucceeded:
			return fmt.Errorf("it is %s (%s)", all[0].Status, all[0].Reason)
		}
		return nil
	})
	r.wantDeployment("dev", "site-demo", "web", "registry.example.com/shop/site:bbbbbbbb", 2,
		map[string]string{"shipbot.io/sha": good, "shipbot.io/project": "shop/site"}, false)
	if g := greetingOf(r, "dev", "site-demo"); g != "from commit b" {
		t.Errorf("greeting %q, want the values of commit b", g)
	}

	// Commit c is the head of !5 and asks for canary, which shop/site may not use.
	gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: 10, IID: 5, SourceBranch: "dev", TargetBranch: "main", HeadSHA: bad})
	gl.SetCommitMergeRequests(10, bad, 5)
	post(bad, 201)
	want := `.shipbot.yaml:8: apps[0].environments.canary: environment "canary" is not open to project shop/site's .shipbot.yaml (it may use dev)`
	fixtures.Eventually(t, 30*time.Second, "the refusal on !5", func() error {
		for _, n := range gl.Notes(10, 5) {
			if strings.Contains(n.Body, want) && strings.Contains(n.Body, "nothing was applied") {
				return nil
			}
		}
		return fmt.Errorf("notes %+v", gl.Notes(10, 5))
	})
	var status *fakegitlab.Status
	for _, s := range gl.Statuses(10, bad) {
		if s.Name == "shipbot/config" {
			status = &s
		}
	}
	if status == nil || status.State != "failed" || !strings.Contains(status.Description, ".shipbot.yaml:8:") {
		t.Errorf("commit status shipbot/config of %s: %+v, want failed naming .shipbot.yaml:8", bad, status)
	}

	// Nothing applied: no record, dev still runs commit b, canary has no site.
	if all, _ := r.m.Store().Deployments(func(d store.Deployment) bool { return d.PipelineID == 201 }); len(all) != 0 {
		t.Errorf("the refused build recorded %d deployments", len(all))
	}
	r.wantDeployment("dev", "site-demo", "web", "registry.example.com/shop/site:bbbbbbbb", 2, map[string]string{"shipbot.io/sha": good}, false)
	if g := greetingOf(r, "dev", "site-demo"); g != "from commit b" {
		t.Errorf("greeting %q after the refusal, want commit b's", g)
	}
	_, err := kc.Client().AppsV1().Deployments(r.ns["canary"]).Get(context.Background(), "site-demo", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("canary: Deployment site-demo: %v, want not found", err)
	}
}

// startSite starts shipbot with GitLab gl, whose project shop/site may
// declare apps for dev in its .shipbot.yaml.
func startSite(t *testing.T, gl *fakegitlab.Server) *rig {
	t.Helper()
	return startWith(t, "", "", "{baseURL: "+gl.URL()+", token: repo-token, webhookSecret: "+secret+"}", `projects:
  - path: shop/site
    environments: [dev]
    allowedOverrides: [source, params, registry]
`)
}

// greetingOf reads the greeting of a ConfigMap that the demo chart renders.
func greetingOf(r *rig, env, name string) string {
	r.t.Helper()
	g, err := kcConfigMap(r, env, name)
	if err != nil {
		r.t.Fatalf("%s: %v", env, err)
	}
	return g
}

// kcConfigMap reads the greeting of a ConfigMap of env from the apiserver.
func kcConfigMap(r *rig, env, name string) (string, error) {
	cm, err := kc.Client().CoreV1().ConfigMaps(r.ns[env]).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return cm.Data["greeting"], nil
}

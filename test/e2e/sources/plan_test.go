package sources

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// planNotes are shipbot's plan comments on a merge request.
func planNotes(gl *fakegitlab.Server, project, iid int64) []fakegitlab.Note {
	var out []fakegitlab.Note
	for _, n := range gl.Notes(project, iid) {
		if strings.Contains(n.Body, "<!-- shipbot:plan -->") {
			out = append(out, n)
		}
	}
	return out
}

// TestMergePlan: once a merge request's pipeline succeeds, shipbot plans
// what merging its head into dev would change in dev, asking the
// apiserver for a dry run, and says so in one comment; /plan edits that
// comment. Nothing is applied.
func TestMergePlan(t *testing.T) {
	t.Parallel()
	gl := fakegitlab.New(t, "repo-token")
	gl.SetProjectPath(10, "shop/site")
	good, head := strings.Repeat("b", 40), strings.Repeat("d", 40)
	for c, sha := range map[string]string{"b": good, "d": head} {
		files := repoFiles(t, c)
		files[".shipbot.yaml"] = siteFile("")
		gl.SetCommit(10, sha, files)
	}
	r := startSite(t, gl)
	post := func(event string, body []byte) {
		t.Helper()
		if code := fixtures.PostWebhook(t, r.m.Addr(), secret, event, body); code != http.StatusOK {
			t.Fatalf("%s: webhook answered %d", event, code)
		}
	}
	post("Pipeline Hook", fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: 10, Project: "shop/site", Ref: "dev", SHA: good, PipelineID: 300, Username: "dev-person"}))
	fixtures.Eventually(t, 90*time.Second, "commit b in dev", func() error {
		if g := greetingOrEmpty(r, "dev", "site-demo"); g != "from commit b" {
			return fmt.Errorf("greeting %q", g)
		}
		return nil
	})

	mr := fixtures.MR{ProjectID: 10, Project: "shop/site", IID: 6, SourceBranch: "feature-x", HeadSHA: head, Username: "dev-person", UserID: 700}
	gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: 10, IID: 6, SourceBranch: "feature-x", TargetBranch: "dev", HeadSHA: head})
	post("Pipeline Hook", fixtures.MRPipeline(t, mr, 301))
	var plan fakegitlab.Note
	fixtures.Eventually(t, 60*time.Second, "the plan comment", func() error {
		notes := planNotes(gl, 10, 6)
		if len(notes) != 1 {
			return fmt.Errorf("%d plan comments", len(notes))
		}
		plan = notes[0]
		return nil
	})
	ns := r.ns["dev"]
	for _, want := range []string{
		"Merging `dddddddd` into `dev`", "**site** in **dev** (cluster local): 0 created, 4 changed, 0 unchanged",
		"ConfigMap " + ns + "/site-demo changed", "-  greeting: from commit b", "+  greeting: from commit d",
		"-    shipbot.io/sha: " + good, "+    shipbot.io/sha: " + head, "+        image: registry.example.com/shop/site:dddddddd",
	} {
		if !strings.Contains(plan.Body, want) {
			t.Errorf("the plan does not say %q:\n%s", want, plan.Body)
		}
	}
	if strings.Contains(plan.Body, "deployed-by") || strings.Contains(plan.Body, "pipeline-id") {
		t.Errorf("the plan shows annotations that every deploy changes:\n%s", plan.Body)
	}
	if g := greetingOrEmpty(r, "dev", "site-demo"); g != "from commit b" {
		t.Errorf("after the plan dev says %q, want commit b's: a plan applies nothing", g)
	}

	// /plan from a developer plans again, in the same comment.
	gl.SetMember(10, 700, 30)
	id := gl.AddNote(10, 6, fakegitlab.Note{Body: "/plan", Author: "dev-person", AuthorID: 700})
	post("Note Hook", fixtures.Note(t, mr, id, "/plan", "create"))
	fixtures.Eventually(t, 60*time.Second, "the plan comment edited", func() error {
		notes := planNotes(gl, 10, 6)
		if len(notes) != 1 || notes[0].ID != plan.ID || !notes[0].UpdatedAt.After(plan.UpdatedAt) {
			return fmt.Errorf("plan comments %+v", notes)
		}
		return nil
	})
}

// greetingOrEmpty is greetingOf, empty while the ConfigMap is missing.
func greetingOrEmpty(r *rig, env, name string) string {
	cm, err := kcConfigMap(r, env, name)
	if err != nil {
		return ""
	}
	return cm
}

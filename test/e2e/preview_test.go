package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

const projectID = 77

// previewRig is shipbot with previews on, a fake GitLab and one merge request.
type previewRig struct {
	env env
	gl  *fakegitlab.Server
	m   *serve.Main
	mr  fixtures.MR
	ns  string
}

func newPreviewRig(t *testing.T, ttl string, now func() time.Time) *previewRig {
	t.Helper()
	return newPreviewRigWith(t, ttl, now, "", nil)
}

// newPreviewRigWith is newPreviewRig with the app's source, and a fake
// GitLab set up before shipbot starts.
func newPreviewRigWith(t *testing.T, ttl string, now func() time.Time, source string, setup func(*fakegitlab.Server)) *previewRig {
	t.Helper()
	e := newEnv(t)
	e.Source = source
	gl := fakegitlab.New(t, gitlabToken)
	prefix := fmt.Sprintf("p%d-", time.Now().UnixNano()%1_000_000)
	e.Previews = &previewEnv{GitLabURL: gl.URL(), Prefix: prefix, TTL: ttl}
	r := &previewRig{env: e, gl: gl,
		mr: fixtures.MR{ProjectID: projectID, Project: "shop/web", IID: 12, Action: "open", State: "opened",
			SourceBranch: "feature-login", HeadSHA: sha('1'), Username: "alice", UserID: 501}}
	r.ns = deployer.PreviewNamespace(prefix, "shop/web", projectID, 12)
	gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: 12, State: "opened", SourceBranch: "feature-login", HeadSHA: sha('1')})
	if setup != nil {
		setup(gl)
	}
	r.m = startAt(t, e.config(t), now)
	t.Cleanup(func() { deleteNamespace(r.ns) })
	return r
}

func deleteNamespace(ns string) {
	_ = kc.Client().CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
}

// open tells shipbot of the merge request's state by webhook, after making
// GitLab's API say the same, as GitLab does: the reconciler reads the API.
func (r *previewRig) open(t *testing.T) {
	t.Helper()
	r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: r.mr.IID, State: r.mr.State,
		SourceBranch: r.mr.SourceBranch, HeadSHA: r.mr.HeadSHA, Labels: r.mr.Labels})
	mustPost(t, r.m, "Merge Request Hook", fixtures.MergeRequest(t, r.mr))
}

func (r *previewRig) pipeline(t *testing.T, id int64) {
	t.Helper()
	mustPost(t, r.m, "Pipeline Hook", fixtures.MRPipeline(t, r.mr, id))
}

func mustPost(t *testing.T, m *serve.Main, event string, body []byte) {
	t.Helper()
	if code := post(t, m, event, body); code != http.StatusOK {
		t.Fatalf("%s answered %d", event, code)
	}
}

func (r *previewRig) waitImage(t *testing.T, suffix string) {
	t.Helper()
	fixtures.Eventually(t, 60*time.Second, "preview deployment with image "+suffix, func() error {
		d, err := kc.Client().AppsV1().Deployments(r.ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		img := d.Spec.Template.Spec.Containers[0].Image
		if !strings.HasSuffix(img, suffix) || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("image %s, %d available", img, d.Status.AvailableReplicas)
		}
		return nil
	})
}

// comment waits for shipbot's only comment on the merge request to contain want.
func (r *previewRig) comment(t *testing.T, want string) fakegitlab.Note {
	t.Helper()
	var note fakegitlab.Note
	fixtures.Eventually(t, 30*time.Second, "one comment containing "+want, func() error {
		var ours []fakegitlab.Note
		for _, n := range r.gl.Notes(projectID, 12) {
			if strings.Contains(n.Body, "shipbot:preview") {
				ours = append(ours, n)
			}
		}
		if len(ours) != 1 {
			return fmt.Errorf("%d preview comments", len(ours))
		}
		note = ours[0]
		if !strings.Contains(note.Body, want) {
			return fmt.Errorf("comment is %q", note.Body)
		}
		return nil
	})
	return note
}

func (r *previewRig) waitGone(t *testing.T) {
	t.Helper()
	fixtures.Eventually(t, 90*time.Second, "namespace "+r.ns+" gone", func() error {
		_, err := kc.Client().CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

func TestPreviewLifecycle(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.open(t)
	r.pipeline(t, 9001)
	r.waitImage(t, ":11111111")
	first := r.comment(t, "https://mr-12-web.preview.test")

	ns, err := kc.Client().CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"shipbot.io/preview": "true", "shipbot.io/project-id": "77", "shipbot.io/mr-iid": "12",
		"shipbot.io/source-branch": "feature-login", "shipbot.io/head-sha": sha('1'), "app.kubernetes.io/managed-by": "shipbot"} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
		}
	}
	q, err := kc.Client().CoreV1().ResourceQuotas(r.ns).Get(context.Background(), "shipbot", metav1.GetOptions{})
	if cpu := q.Spec.Hard[corev1.ResourceRequestsCPU]; err != nil || cpu.String() != "4" {
		t.Errorf("quota: %v %v", q.Spec.Hard, err)
	}
	if _, err := kc.Client().CoreV1().LimitRanges(r.ns).Get(context.Background(), "shipbot", metav1.GetOptions{}); err != nil {
		t.Errorf("limit range: %v", err)
	}
	ing, err := kc.Client().NetworkingV1().Ingresses(r.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || ing.Spec.Rules[0].Host != "mr-12-web.preview.test" {
		t.Errorf("ingress: %v, %v", ing, err)
	}
	envs := r.gl.Environments(projectID)
	if len(envs) != 1 || envs[0].Name != "review/mr-12" || envs[0].ExternalURL != "https://mr-12-web.preview.test" || envs[0].State != "available" {
		t.Errorf("environments: %+v", envs)
	}

	// A new push: the MR's head moves, its pipeline succeeds, the preview redeploys
	// and the same comment is edited.
	r.mr.Action, r.mr.HeadSHA = "update", sha('2')
	r.open(t)
	r.pipeline(t, 9002)
	r.waitImage(t, ":22222222")
	second := r.comment(t, "`22222222`")
	if second.ID != first.ID {
		t.Errorf("a new comment %d instead of editing %d", second.ID, first.ID)
	}
	// A late pipeline for the old head must not roll the preview back.
	old := r.mr
	old.HeadSHA = sha('1')
	mustPost(t, r.m, "Pipeline Hook", fixtures.MRPipeline(t, old, 9003))
	time.Sleep(time.Second)
	r.waitImage(t, ":22222222")
	fixtures.Eventually(t, 20*time.Second, "both GitLab deployments succeeded", func() error {
		if deps := r.gl.Deployments(projectID); len(deps) != 2 || deps[0].Status != "success" || deps[1].Status != "success" || deps[1].SHA != sha('2') {
			return fmt.Errorf("gitlab deployments: %+v", deps)
		}
		return nil
	})

	// Close: everything goes.
	r.mr.Action, r.mr.State = "close", "closed"
	r.open(t)
	r.waitGone(t)
	r.comment(t, "Preview stopped")
	fixtures.Eventually(t, 10*time.Second, "environment stopped", func() error {
		if envs := r.gl.Environments(projectID); envs[0].State != "stopped" {
			return fmt.Errorf("state %s", envs[0].State)
		}
		return nil
	})
	if u := r.gl.Unexpected(); len(u) > 0 {
		t.Errorf("unexpected GitLab calls: %v", u)
	}
}

// TestPreviewHeadMovesDuringDeploy moves the merge request's head in GitLab
// (a push whose webhook has not come yet) while a preview of the old head is
// deploying: the reconciler learns the new head from the API, the deploy
// goes stale, and the GitLab deployment record it opened must still end,
// canceled, never left running. The new head's pipeline then deploys it.
func TestPreviewHeadMovesDuringDeploy(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.open(t)
	moved := make(chan error, 1)
	r.gl.BeforeNext("POST", fmt.Sprintf("projects/%d/deployments", projectID), func() {
		r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: 12, State: "opened", SourceBranch: "feature-login", HeadSHA: sha('3')})
		moved <- waitFor(10*time.Second, func() bool {
			p, err := r.m.Store().Preview(store.PreviewKey(projectID, 12))
			return err == nil && p.HeadSHA == sha('3')
		})
	})
	r.pipeline(t, 9401)
	if err := <-moved; err != nil {
		t.Fatalf("the reconciler never took the new head: %v", err)
	}
	fixtures.Eventually(t, 20*time.Second, "the stale deploy's GitLab deployment canceled", func() error {
		if deps := r.gl.Deployments(projectID); len(deps) != 1 || deps[0].Status != "canceled" || deps[0].SHA != sha('1') {
			return fmt.Errorf("gitlab deployments: %+v", deps)
		}
		return nil
	})
	r.comment(t, "waits for a successful pipeline")

	r.mr.Action, r.mr.HeadSHA = "update", sha('3')
	r.open(t)
	r.pipeline(t, 9402)
	r.waitImage(t, ":33333333")
	fixtures.Eventually(t, 20*time.Second, "the new head's GitLab deployment succeeded", func() error {
		if deps := r.gl.Deployments(projectID); len(deps) != 2 || deps[0].Status != "canceled" || deps[1].Status != "success" || deps[1].SHA != sha('3') {
			return fmt.Errorf("gitlab deployments: %+v", deps)
		}
		return nil
	})
}

// waitFor polls cond until it holds or within passes; unlike
// fixtures.Eventually it may run off the test's goroutine.
func waitFor(within time.Duration, cond func() bool) error {
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
	}
	return nil
}

func TestPreviewReopenRecreates(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.open(t)
	r.pipeline(t, 9101)
	r.waitImage(t, ":11111111")
	r.mr.Action, r.mr.State = "close", "closed"
	r.open(t)
	r.waitGone(t)
	r.mr.Action, r.mr.State = "reopen", "opened"
	r.open(t)
	r.waitImage(t, ":11111111")
	r.comment(t, "Preview ready")
}

// TestPreviewMissedCloseWebhook merges the MR in GitLab without telling
// shipbot; the reconciler finds out from the API.
func TestPreviewMissedCloseWebhook(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.open(t)
	r.pipeline(t, 9201)
	r.waitImage(t, ":11111111")
	r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: 12, State: "merged", SourceBranch: "feature-login", HeadSHA: sha('1')})
	r.waitGone(t)
	r.comment(t, "merge request merged")
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestPreviewTTL(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			c := &clock{t: time.Now()}
			r := newPreviewRig(t, "168h", c.Now)
			if keep {
				r.mr.Labels = []string{"preview::keep"}
				r.gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: 12, State: "opened", SourceBranch: "feature-login", HeadSHA: sha('1'), Labels: []string{"preview::keep"}})
			}
			r.open(t)
			r.pipeline(t, 9301)
			r.waitImage(t, ":11111111")
			c.Add(8 * 24 * time.Hour)
			if !keep {
				r.waitGone(t)
				r.comment(t, "idle past its time to live")
				return
			}
			// Two sweeps' worth of time, then the kept preview must still be there.
			time.Sleep(6 * time.Second)
			r.waitImage(t, ":11111111")
		})
	}
}

func TestPreviewNamespaceForLongProjectPath(t *testing.T) {
	path := "a-very-long-group-name/with-a-subgroup-that-is-also-long/and-a-project-name-that-goes-on"
	ns := deployer.PreviewNamespace("preview-", path, 98765432, 123456)
	if len(ns) > 63 || !strings.HasSuffix(ns, "-mr-123456") {
		t.Fatalf("namespace %q (%d chars)", ns, len(ns))
	}
	if _, err := kc.Client().CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the apiserver refuses %q: %v", ns, err)
	}
	deleteNamespace(ns)
}

// A namespace that has the preview's name but not its labels is someone
// else's: the preview fails with the reason, and closing the merge request
// leaves that namespace standing.
func TestPreviewLeavesAForeignNamespaceAlone(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns, Labels: map[string]string{"team": "payments"}}}
	if _, err := kc.Client().CoreV1().Namespaces().Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.open(t)
	r.pipeline(t, 9101)
	r.comment(t, "Preview failed")
	note := r.comment(t, "not shipbot")
	if !strings.Contains(note.Body, r.ns) {
		t.Errorf("the failure does not name the namespace: %q", note.Body)
	}
	r.mr.Action, r.mr.State = "close", "closed"
	r.open(t)
	r.comment(t, "Preview stopped")
	ns, err := kc.Client().CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil || ns.Labels["team"] != "payments" || ns.Labels["shipbot.io/preview"] != "" {
		t.Errorf("the foreign namespace after the preview stopped: %+v, %v", ns, err)
	}
	deps, err := kc.Client().AppsV1().Deployments(r.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(deps.Items) != 0 {
		t.Errorf("shipbot deployed into the foreign namespace: %v %v", deps, err)
	}
}

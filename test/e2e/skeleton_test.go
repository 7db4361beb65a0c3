package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

func devPipeline(t *testing.T, s string, id int64) []byte {
	return fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: 42, Project: "shop/web", Ref: "dev", SHA: s, PipelineID: id, Username: "alice"})
}

func TestPipelineSuccessDeploysAndRecords(t *testing.T) {
	e := newEnv(t)
	m := start(t, e.config(t))
	if code := post(t, m, "Pipeline Hook", devPipeline(t, sha('a'), 1001), "X-Gitlab-Event-UUID", "p-1001"); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	got := waitDone(t, m.Store(), 1, 60*time.Second)
	if len(got) != 1 {
		t.Fatalf("%d deployment records, want 1", len(got))
	}
	d := got[0]
	if d.Status != store.StatusSucceeded {
		t.Fatalf("deployment %s: %s (%s)", d.ID, d.Status, d.Reason)
	}
	// The pipeline example's last successful job is build-image (376) of
	// test-image (377), test-build (378): the highest successful id wins.
	want := store.Deployment{App: "web", Project: "shop/web", ProjectID: 42, Environment: "dev", Cluster: "local", Namespace: e.Namespace,
		Ref: "dev", SHA: sha('a'), Image: "registry.example.com/shop/web:aaaaaaaa", PipelineID: 1001, JobID: 378, User: "alice", Trigger: "pipeline"}
	if d.App != want.App || d.Project != want.Project || d.ProjectID != want.ProjectID || d.Environment != want.Environment ||
		d.Cluster != want.Cluster || d.Namespace != want.Namespace || d.Ref != want.Ref || d.SHA != want.SHA || d.Image != want.Image ||
		d.PipelineID != want.PipelineID || d.JobID != want.JobID || d.User != want.User || d.Trigger != want.Trigger {
		t.Errorf("record = %+v\nwant     %+v", d, want)
	}
	if d.Started.IsZero() || d.Finished.Before(d.Started) || d.Created.After(d.Started) {
		t.Errorf("times out of order: created %s started %s finished %s", d.Created, d.Started, d.Finished)
	}

	dep, err := kc.Client().AppsV1().Deployments(e.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Status.AvailableReplicas != 3 || dep.Status.UpdatedReplicas != 3 {
		t.Errorf("deployment status %+v, want 3 available and updated", dep.Status)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != want.Image {
		t.Errorf("image %s, want %s", img, want.Image)
	}
	wantAnn := map[string]string{
		deployer.AnnotationDeployment: d.ID, deployer.AnnotationProject: "shop/web", deployer.AnnotationEnvironment: "dev",
		deployer.AnnotationRef: "dev", deployer.AnnotationSHA: sha('a'), deployer.AnnotationPipeline: "1001",
		deployer.AnnotationJob: "378", deployer.AnnotationUser: "alice",
	}
	for k, v := range wantAnn {
		if dep.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, dep.Annotations[k], v)
		}
	}
	svc, err := kc.Client().CoreV1().Services(e.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Annotations[deployer.AnnotationSHA] != sha('a') {
		t.Errorf("service is not stamped: %v", svc.Annotations)
	}
	// Server-side apply recorded shipbot as the owner of the fields it set.
	owned := false
	for _, mf := range dep.ManagedFields {
		owned = owned || (mf.Manager == "shipbot" && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if !owned {
		t.Errorf("no server-side apply entry for manager shipbot in %v", dep.ManagedFields)
	}
}

func TestDuplicateDeliveryDeploysOnce(t *testing.T) {
	e := newEnv(t)
	m := start(t, e.config(t))
	body := devPipeline(t, sha('b'), 2002)
	for i := 0; i < 3; i++ {
		if code := post(t, m, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "p-2002"); code != http.StatusOK {
			t.Fatalf("delivery %d answered %d", i, code)
		}
	}
	waitDone(t, m.Store(), 1, 60*time.Second)
	// Give a wrongly queued second deploy the time to show up.
	time.Sleep(500 * time.Millisecond)
	got, _ := m.Store().Deployments(nil)
	if len(got) != 1 || got[0].Status != store.StatusSucceeded {
		t.Fatalf("want exactly one succeeded deployment, got %+v", got)
	}
	dep, err := kc.Client().AppsV1().Deployments(e.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Generation != 1 {
		t.Errorf("deployment generation %d: applied more than once with changes", dep.Generation)
	}
}

func TestRejectedDeliveriesStoreNothing(t *testing.T) {
	e := newEnv(t)
	m := start(t, e.config(t))
	body := devPipeline(t, sha('c'), 3003)
	if code := post(t, m, "Pipeline Hook", body, "X-Gitlab-Token", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token answered %d, want 401", code)
	}
	if code := post(t, m, "Pipeline Hook", []byte(`{"object_kind":"pipeline","object_attributes":`)); code != http.StatusBadRequest {
		t.Errorf("malformed JSON answered %d, want 400", code)
	}
	time.Sleep(300 * time.Millisecond)
	pending, _ := m.Store().Pending(10)
	deps, _ := m.Store().Deployments(nil)
	if len(pending) != 0 || len(deps) != 0 {
		t.Fatalf("rejected deliveries left %d inbox items and %d deployments", len(pending), len(deps))
	}
	list, err := kc.Client().AppsV1().Deployments(e.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("rejected deliveries deployed %d objects", len(list.Items))
	}
}

// TestRestartProcessesInbox acknowledges deliveries while no worker runs (as
// when shipbot dies right after answering GitLab), then starts shipbot.
func TestRestartProcessesInbox(t *testing.T) {
	e := newEnv(t)
	st, err := store.Open(e.StorePath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{sha('d'), sha('e')} {
		_, _, err := st.Accept(context.Background(), store.Delivery{Key: "uuid:r-" + s, Event: "Pipeline Hook", Body: devPipeline(t, s, int64(4000+i)), ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	m := start(t, e.config(t))
	got := waitDone(t, m.Store(), 2, 60*time.Second)
	var succeeded *store.Deployment
	for i := range got {
		if got[i].Status == store.StatusSucceeded {
			succeeded = &got[i]
		}
	}
	// Both deliveries target dev; the newer one wins and the older one is
	// superseded, unless the first finished before the second was queued.
	if succeeded == nil || succeeded.SHA != sha('e') {
		t.Fatalf("want the newest sha deployed, got %+v", got)
	}
	if m.Store().InboxDepth() != 0 {
		t.Errorf("inbox depth %d after processing", m.Store().InboxDepth())
	}
	dep, err := kc.Client().AppsV1().Deployments(e.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":eeeeeeee") {
		t.Errorf("image %s, want the newest build", img)
	}
}

func TestFailedRolloutReportsPodReason(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*env)
		want   []string
	}{
		{"bad image", func(e *env) { e.Image = "registry.invalid/{{.Project}}:{{.ShortSHA}}" }, []string{"ImagePullBackOff", "registry.invalid/shop/web"}},
		{"insufficient cpu", func(e *env) { e.CPURequest = "1000" }, []string{"FailedScheduling", "Insufficient cpu"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.RolloutTimeout = "6s"
			c.mutate(&e)
			m := start(t, e.config(t))
			post(t, m, "Pipeline Hook", devPipeline(t, sha('f'), 5005))
			got := waitDone(t, m.Store(), 1, 60*time.Second)
			d := got[0]
			if d.Status != store.StatusFailed {
				t.Fatalf("status %s, want failed", d.Status)
			}
			t.Logf("reason: %s", d.Reason)
			for _, w := range c.want {
				if !strings.Contains(d.Reason, w) {
					t.Errorf("reason %q does not mention %q", d.Reason, w)
				}
			}
		})
	}
}

package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/store"
)

// deploy stores a deployment record with id d<seq>, created seq minutes after t0.
func (r *rig) deploy(t *testing.T, seq uint64, app, env, ref, user string, status store.Status) store.Deployment {
	t.Helper()
	d := store.Deployment{
		ID: store.FormatID(seq), App: app, Project: "shop/" + app, Environment: env, Cluster: "c1", Namespace: app,
		Ref: ref, SHA: strings.Repeat(fmt.Sprint(seq%10), 40), Image: "registry.example.com/shop/" + app + ":" + ref,
		User: user, Trigger: "pipeline", Status: status, Created: t0.Add(time.Duration(seq) * time.Minute),
	}
	if err := r.store.PutDeployment(d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (r *rig) putPreview(t *testing.T, p store.Preview) {
	t.Helper()
	if _, err := r.store.Update(func(tx *store.Tx) error { return tx.PutPreview(p) }); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) deploymentsPage(t *testing.T, query string) api.DeploymentPage {
	t.Helper()
	return getOK[api.DeploymentPage](t, r, "/api/v1/deployments?"+query)
}

func deploymentIDs(p api.DeploymentPage) []string {
	out := []string{}
	for _, d := range p.Items {
		out = append(out, d.ID)
	}
	return out
}

func TestDeploymentsFilters(t *testing.T) {
	r := newRig(t, token)
	r.deploy(t, 1, "web", "dev", "dev", "alice", store.StatusSucceeded)
	r.deploy(t, 2, "web", "dev", "dev", "bob", store.StatusFailed)
	r.deploy(t, 3, "api", "dev", "main", "alice", store.StatusRunning)
	r.deploy(t, 4, "web", "staging", "release-1", "carol", store.StatusSucceeded)
	r.deploy(t, 5, "web", "dev", "dev", "alice", store.StatusSuperseded)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"d000000000005", "d000000000004", "d000000000003", "d000000000002", "d000000000001"}},
		{"project=shop/web&environment=dev", []string{"d000000000005", "d000000000002", "d000000000001"}},
		{"app=api", []string{"d000000000003"}},
		{"ref=release-1", []string{"d000000000004"}},
		{"user=alice", []string{"d000000000005", "d000000000003", "d000000000001"}},
		{"status=Failed,running", []string{"d000000000003", "d000000000002"}},
		{"status=succeeded&status=superseded&user=alice", []string{"d000000000005", "d000000000001"}},
		{"since=2026-03-01T10:02:00Z&until=2026-03-01T10:04:00Z", []string{"d000000000003", "d000000000002"}},
		{"cluster=elsewhere", []string{}},
	} {
		if got := deploymentIDs(r.deploymentsPage(t, tt.query)); !slices.Equal(got, tt.want) {
			t.Errorf("?%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	p := r.deploymentsPage(t, "ref=release-1")
	if d := p.Items[0]; d.User != "carol" || d.Image != "registry.example.com/shop/web:release-1" || d.Status != store.StatusSucceeded {
		t.Errorf("record as served: %+v", d)
	}
}

func TestDeploymentsPages(t *testing.T) {
	r := newRig(t, token)
	for i := range uint64(7) {
		r.deploy(t, i+1, "web", "dev", "dev", "alice", store.StatusSucceeded)
	}
	var got []string
	pages := 0
	for q := "limit=3"; ; {
		p := r.deploymentsPage(t, q)
		pages++
		got = append(got, deploymentIDs(p)...)
		if p.Next == "" {
			break
		}
		// A deployment recorded between pages lands on the first page
		// and shifts nothing on later ones.
		if pages == 1 {
			r.deploy(t, 8, "web", "dev", "dev", "alice", store.StatusPending)
		}
		q = "limit=3&cursor=" + url.QueryEscape(p.Next)
	}
	want := []string{"d000000000007", "d000000000006", "d000000000005", "d000000000004", "d000000000003", "d000000000002", "d000000000001"}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}
	if p := r.deploymentsPage(t, "limit=8"); len(p.Items) != 8 || p.Next != "" {
		t.Errorf("limit=8: %d items, next %q", len(p.Items), p.Next)
	}
}

func TestPreviewsList(t *testing.T) {
	r := newRig(t, token)
	mr := func(project string, iid int64, status store.PreviewStatus, user string, updated time.Time) store.Preview {
		return store.Preview{
			Key: store.PreviewKey(int64(len(project)), iid), Project: project, IID: iid, Title: fmt.Sprintf("MR %d", iid),
			SourceBranch: fmt.Sprintf("feature-%d", iid), HeadSHA: strings.Repeat("a", 40), MRState: "opened", Wanted: status != store.PreviewStopped,
			Cluster: "c1", Namespace: fmt.Sprintf("preview-%d", iid), Status: status, User: user, Updated: updated,
			WebURL: fmt.Sprintf("https://gitlab.example.com/%s/-/merge_requests/%d", project, iid),
		}
	}
	web3 := mr("shop/web", 3, store.PreviewReady, "alice", t0.Add(3*time.Hour))
	r.putPreview(t, mr("shop/web", 1, store.PreviewStopped, "bob", t0.Add(time.Hour)))
	r.putPreview(t, web3)
	r.putPreview(t, mr("shop/api", 2, store.PreviewFailed, "alice", t0.Add(2*time.Hour)))
	r.putPreview(t, mr("shop/web", 12, store.PreviewWaiting, "", t0.Add(4*time.Hour)))
	// web!3 was deployed to the review environment twice; its first
	// deployment says when the preview was created.
	for i, at := range []time.Time{t0.Add(30 * time.Minute), t0.Add(3 * time.Hour)} {
		d := store.Deployment{ID: store.FormatID(uint64(i + 1)), App: "web", Project: "shop/web", Environment: "review",
			Preview: web3.Key, Status: store.StatusSucceeded, Created: at}
		if err := r.store.PutDeployment(d); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) api.PreviewPage {
		t.Helper()
		code, b := r.do(t, http.MethodGet, "/api/v1/previews?"+query, "")
		if code != http.StatusOK {
			t.Fatalf("previews ?%s: %d %s", query, code, b)
		}
		return decode[api.PreviewPage](t, b)
	}
	names := func(p api.PreviewPage) []string {
		out := []string{}
		for _, it := range p.Items {
			out = append(out, fmt.Sprintf("%s!%d", it.Project, it.IID))
		}
		return out
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"shop/api!2", "shop/web!12", "shop/web!3", "shop/web!1"}},
		{"project=shop/web&status=ready,waiting", []string{"shop/web!12", "shop/web!3"}},
		{"environment=review", []string{"shop/web!3"}},
		{"ref=feature-2", []string{"shop/api!2"}},
		{"user=alice", []string{"shop/api!2", "shop/web!3"}},
		{"since=2026-03-01T12:00:00Z", []string{"shop/api!2", "shop/web!12", "shop/web!3"}},
		{"until=2026-03-01T12:00:00Z", []string{"shop/web!1"}},
	} {
		if got := names(list(tt.query)); !slices.Equal(got, tt.want) {
			t.Errorf("?%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	p := list("environment=review")
	if got := p.Items[0]; got.Environment != "review" || !got.Created.Equal(t0.Add(30*time.Minute)) || got.WebURL != web3.WebURL || got.Status != store.PreviewReady {
		t.Errorf("web!3 as served: %+v", got)
	}

	var got []string
	for q := "limit=3"; ; {
		p := list(q)
		got = append(got, names(p)...)
		if p.Next == "" {
			break
		}
		q = "limit=3&cursor=" + url.QueryEscape(p.Next)
	}
	if want := names(list("")); !slices.Equal(got, want) {
		t.Errorf("pages: %v, want %v", got, want)
	}
}

func TestRecordListsRefuseBadQueries(t *testing.T) {
	r := newRig(t, token)
	for _, tt := range []struct{ path, want string }{
		{"/api/v1/deployments?phase=Paused", "phase: unknown query parameter (known: project, app, environment, cluster, ref, user, status, since, until, limit, cursor)"},
		{"/api/v1/deployments?status=done", "status: unknown status \"done\" (statuses: pending, running, succeeded, failed, superseded)"},
		{"/api/v1/deployments?limit=0", "limit: \"0\" is not a number in 1..500"},
		{"/api/v1/deployments?ref=a&ref=b", "ref: given 2 times; give it once"},
		{"/api/v1/deployments?since=yesterday", "since: \"yesterday\" is not an RFC3339 time like 2026-03-01T10:00:00Z"},
		{"/api/v1/deployments?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until: must be after since"},
		{"/api/v1/previews?app=web", "app: unknown query parameter (known: project, environment, ref, user, status, since, until, limit, cursor)"},
		{"/api/v1/previews?status=running", "status: unknown status \"running\" (statuses: waiting, deploying, ready, failed, stopping, stopped)"},
		{"/api/v1/previews?cursor=d000000000001", "cursor: \"d000000000001\" is not the next of a previous page"},
	} {
		code, b := r.do(t, http.MethodGet, tt.path, "")
		if code != http.StatusBadRequest || errorOf(t, b) != tt.want {
			t.Errorf("GET %s: %d %s, want 400 %q", tt.path, code, b, tt.want)
		}
	}
	for _, path := range []string{"/api/v1/deployments", "/api/v1/previews"} {
		if code, _ := r.do(t, http.MethodGet, path, "", "Authorization", "Bearer guess"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
	}
}

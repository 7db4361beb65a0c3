package deployer

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
)

func TestPreviewNamespace(t *testing.T) {
	long := strings.Repeat("group/", 12) + "project"
	cases := []struct {
		prefix, project string
		projectID, iid  int64
		want            string
	}{
		{"preview-", "shop/web", 42, 12, "preview-shop-web-p42-mr-12"},
		{"preview-", "Shop/Web_App.v2", 5, 7, "preview-shop-web-app-v2-p5-mr-7"},
		{"", "shop/web", 42, 1, "shop-web-p42-mr-1"},
	}
	for _, c := range cases {
		if got := PreviewNamespace(c.prefix, c.project, c.projectID, c.iid); got != c.want {
			t.Errorf("PreviewNamespace(%q, %q, %d, %d) = %q, want %q", c.prefix, c.project, c.projectID, c.iid, got, c.want)
		}
	}
	a := PreviewNamespace("preview-", long, 1234567, 99999)
	b := PreviewNamespace("preview-", long+"2", 1234568, 99999)
	for _, ns := range []string{a, b} {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 || len(ns) > 63 {
			t.Errorf("%q is not a DNS-1123 label: %v", ns, errs)
		}
		if !strings.HasSuffix(ns, "-mr-99999") {
			t.Errorf("%q lost its iid", ns)
		}
	}
	if a == b {
		t.Errorf("two long paths share %q", a)
	}
	// Paths whose slugs collide, in distinct projects, get distinct names.
	seen := map[string]string{}
	for id, path := range map[int64]string{1: "shop/my-app", 2: "shop/my_app", 3: "shop-my/app"} {
		ns := PreviewNamespace("preview-", path, id, 7)
		if other, ok := seen[ns]; ok {
			t.Errorf("%s and %s share namespace %s", path, other, ns)
		}
		seen[ns] = path
	}
}

func previewConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(`
gitlab: {baseURL: https://g.example.com, webhookSecret: s}
clusters: [{name: c, kubeconfig: /k}]
environments:
  - {name: preview, clusters: [c], refs: {mergeRequests: true}}
apps:
  - name: web
    project: shop/web
    environments: {preview: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPreviewerDecisions drives the merge request decisions through a real
// store and checks what gets queued and wanted.
func TestPreviewerDecisions(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := Previewer{Config: previewConfig(t)}
	now := time.Unix(1000, 0)
	mr := MergeRequest{ProjectID: 5, Project: "shop/web", IID: 3, State: "opened", SourceBranch: "feat", HeadSHA: "a1"}
	step := func(f func(tx *store.Tx) error) []store.Deployment {
		t.Helper()
		added, err := st.Update(f)
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	if got := step(func(tx *store.Tx) error { return p.ObserveMR(tx, mr, "open", now) }); len(got) != 0 {
		t.Fatalf("opening deploys before the pipeline: %+v", got)
	}
	got := step(func(tx *store.Tx) error { return p.Build(tx, mr, Build{SHA: "a1", PipelineID: 1}, now) })
	if len(got) != 1 || got[0].Namespace != "preview-shop-web-p5-mr-3" || got[0].Preview != "5!3" || got[0].SHA != "a1" {
		t.Fatalf("head pipeline queued %+v", got)
	}
	mr.HeadSHA = "b2"
	step(func(tx *store.Tx) error { return p.ObserveMR(tx, mr, "update", now) })
	if got := step(func(tx *store.Tx) error { return p.Build(tx, mr, Build{SHA: "a1", PipelineID: 2}, now) }); len(got) != 0 {
		t.Errorf("a pipeline for the old head queued %+v", got)
	}
	if got := step(func(tx *store.Tx) error { return p.Build(tx, mr, Build{SHA: "b2", PipelineID: 3}, now) }); len(got) != 1 {
		t.Errorf("the new head's pipeline queued %d deployments", len(got))
	}
	mr.State = "merged"
	step(func(tx *store.Tx) error { return p.ObserveMR(tx, mr, "merge", now) })
	rec, _ := st.Preview("5!3")
	if rec.Wanted || rec.StopReason != StopMerged {
		t.Errorf("after merge: wanted=%v reason=%q", rec.Wanted, rec.StopReason)
	}
	if got := step(func(tx *store.Tx) error { return p.Build(tx, mr, Build{SHA: "b2", PipelineID: 4}, now) }); len(got) != 0 {
		t.Errorf("a merged MR's pipeline queued %+v", got)
	}
	other := MergeRequest{ProjectID: 6, Project: "shop/api", IID: 1, State: "opened", HeadSHA: "c3"}
	if got := step(func(tx *store.Tx) error { return p.Build(tx, other, Build{SHA: "c3"}, now) }); len(got) != 0 {
		t.Errorf("a project with no preview app queued %+v", got)
	}
}

// TestPreviewOfARepositoryApp: a project whose .shipbot.yaml may use the
// preview environment gets its preview deployed from the apps its head
// declares, and removed when the merge request is merged, although
// shipbot.yaml names none of its apps.
func TestPreviewOfARepositoryApp(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := previewConfig(t)
	cfg.Projects = []config.Project{{Path: "shop/site", Environments: []string{"preview"}}}
	apps, err := cfg.ParseRepo("shop/site", []byte("apps:\n  - name: site\n    environments: {preview: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	mr := MergeRequest{ProjectID: 8, Project: "shop/site", IID: 2, State: "opened", SourceBranch: "feat", HeadSHA: "d4"}
	if _, err := st.Update(func(tx *store.Tx) error { return Previewer{Config: cfg}.ObserveMR(tx, mr, "open", now) }); err != nil {
		t.Fatal(err)
	}
	got, err := st.Update(func(tx *store.Tx) error {
		return Previewer{Config: cfg.WithApps(apps)}.Build(tx, mr, Build{SHA: "d4", PipelineID: 1}, now)
	})
	if err != nil || len(got) != 1 || got[0].App != "site" || got[0].SHA != "d4" {
		t.Fatalf("the head's pipeline queued %+v (%v), want site at d4", got, err)
	}
	mr.State = "merged"
	if _, err := st.Update(func(tx *store.Tx) error { return Previewer{Config: cfg}.ObserveMR(tx, mr, "merge", now) }); err != nil {
		t.Fatal(err)
	}
	if rec, _ := st.Preview("8!2"); rec.Wanted || rec.StopReason != StopMerged {
		t.Errorf("after the merge, with shipbot.yaml's config: wanted=%v reason=%q; want it removed", rec.Wanted, rec.StopReason)
	}
}

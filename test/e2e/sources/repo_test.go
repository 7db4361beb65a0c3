package sources

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

// repoFiles is the demo chart as a repository holds it, under deploy/chart,
// with deploy/values.yaml saying which commit it is.
func repoFiles(t *testing.T, commit string) map[string]string {
	t.Helper()
	files := map[string]string{"deploy/values.yaml": "greeting: from commit " + commit + "\n", "README.md": "shop/web\n"}
	root := testdata(t, "helm/demo")
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path.Join(root, p))
		files["deploy/chart/"+p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestHelmFromRepository deploys, then releases by canary and blue-green,
// a chart that shipbot reads from the app's repository at each build's
// commit, through the (fake) GitLab API's archive; each commit's
// values.yaml names it, and the test reads back from the apiserver that
// every environment runs what its commit says.
func TestHelmFromRepository(t *testing.T) {
	t.Parallel()
	gl := fakegitlab.New(t, "repo-token")
	gl.SetProjectPath(9, "shop/web")
	commits := map[string]string{"dev": "a", "v1-0-0": "1", "v1-1-0": "2"}
	for _, c := range commits {
		gl.SetCommit(9, strings.Repeat(c, 40), repoFiles(t, c))
	}
	source := `    source:
      from: repo
      helm:
        chart: deploy/chart
        valuesFiles: [deploy/values.yaml]
`
	k := kind{
		source: source, workload: "web-demo", service: "web-demo", ctr: "web",
		extra: func(r *rig, env string) {
			rev := "dev"
			if env != "dev" {
				rev = r.current[env]
			}
			if got, want := greeting(r, env), "from commit "+commits[rev]; got != want {
				r.t.Errorf("%s: greeting %q, want %q (the chart's values at the commit of %s)", env, got, want, rev)
			}
		},
	}
	r := startWith(t, k.source, "", "{baseURL: "+gl.URL()+", token: repo-token, webhookSecret: "+secret+"}", "")
	runWith(t, r, k)
	// Each commit's archive is read once, however often a release renders.
	if n := gl.Archives(); n != len(commits) {
		t.Errorf("GitLab served %d archives for %d commits, want one each", n, len(commits))
	}
}

package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// templatesAt is a repository holding the built-in web-service template
// under deploy/templates, plus a ConfigMap that names the commit c.
func templatesAt(t *testing.T, c string) map[string]string {
	t.Helper()
	files := map[string]string{"deploy/templates/commit.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: commit}
data: {commit: "` + c + `", image: {{ .Image | quote }}}
`}
	builtin := os.DirFS("../../templates/builtin/web-service")
	err := fs.WalkDir(builtin, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(builtin, p)
		files[path.Join("deploy/templates", path.Base(p))] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestPreviewFromRepository: a merge request's preview renders the
// templates its repository holds at the head's commit, and again at the
// next head's, read through GitLab's archive.
func TestPreviewFromRepository(t *testing.T) {
	r := newPreviewRigWith(t, "", nil, "{from: repo, templateDir: deploy/templates}", func(gl *fakegitlab.Server) {
		gl.SetProjectPath(projectID, "shop/web")
		gl.SetCommit(projectID, sha('1'), templatesAt(t, "1"))
		gl.SetCommit(projectID, sha('2'), templatesAt(t, "2"))
	})
	commitIs := func(want string) {
		t.Helper()
		fixtures.Eventually(t, 30*time.Second, "ConfigMap commit says "+want, func() error {
			cm, err := kc.Client().CoreV1().ConfigMaps(r.ns).Get(context.Background(), "commit", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data["commit"] != want || cm.Annotations["shipbot.io/sha"] != sha(want[0]) {
				return fmt.Errorf("commit %q, sha %q", cm.Data["commit"], cm.Annotations["shipbot.io/sha"])
			}
			return nil
		})
	}
	r.open(t)
	r.pipeline(t, 9101)
	r.waitImage(t, ":11111111")
	commitIs("1")

	r.mr.Action, r.mr.HeadSHA = "update", sha('2')
	r.open(t)
	r.pipeline(t, 9102)
	r.waitImage(t, ":22222222")
	commitIs("2")
	if n := r.gl.Archives(); n != 2 {
		t.Errorf("%d archives read for two commits, want 2", n)
	}
}

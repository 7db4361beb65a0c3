package gitlab_test

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer"
)

// TestRepositoryFiles reads a repository at a commit through GitLab's
// archive, as deployer.Repos does for sources: the archive's top folder
// is gone, each commit is downloaded once however many read it at once,
// and a commit GitLab does not have fails naming the project and commit.
func TestRepositoryFiles(t *testing.T) {
	fake, c := setup(t)
	fake.SetProjectPath(project, "shop/web")
	fake.SetCommit(project, sha, map[string]string{"deploy/k8s/app.yaml": "kind: List\n", "README.md": "hi\n"})
	repos := deployer.NewRepos(c)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			files, err := repos.Files(t.Context(), "shop/web", sha)
			if err == nil {
				var b []byte
				if b, err = fs.ReadFile(files, "deploy/k8s/app.yaml"); err == nil && string(b) != "kind: List\n" {
					err = errors.New("deploy/k8s/app.yaml reads " + string(b))
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.Archives(); n != 1 {
		t.Errorf("%d archives downloaded for one commit, want 1", n)
	}
	files, _ := repos.Files(t.Context(), "shop/web", sha)
	if entries, err := fs.ReadDir(files, "."); err != nil || len(entries) != 2 {
		t.Errorf("the repository's root holds %v (%v), want deploy and README.md", entries, err)
	}

	_, err := repos.Files(t.Context(), "shop/web", "ffffffffffffffffffffffffffffffffffffffff")
	if !errors.Is(err, deployer.ErrRepoFiles) || !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("unknown commit: %v, want ErrRepoFiles wrapping ErrNotFound", err)
	}
	if err == nil || !strings.Contains(err.Error(), "shop/web at ffffffff") {
		t.Errorf("unknown commit: %q does not name the project and commit", err)
	}
}

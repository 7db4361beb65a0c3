package inbox_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// TestHangingRepoFileIsBounded: a GitLab that never sends shop/site's
// archive holds the inbox for RepoTimeout, not for as long as it hangs:
// shop/web's deploy behind it is recorded while the download still hangs,
// and shop/site's build is refused, recording nothing.
func TestHangingRepoFileIsBounded(t *testing.T) {
	// No timeout of the client's own: GitLab holds the archive for as long as the test runs.
	r := newRig(t, cfgText+"projects:\n  - path: shop/site\n    environments: [dev]\n", gitlab.WithHTTPClient(&http.Client{}))
	r.gl.SetProjectPath(10, "shop/site")
	r.hold("GET", "projects/", nil)
	w := inbox.NewWorker(inbox.Worker{Config: r.cfg, Store: r.st, Deploys: wakeFunc(func() {}), Log: r.log, RepoTimeout: 200 * time.Millisecond,
		Apps: deployer.Apps{Config: r.cfg, Sources: deployer.Sources{Repos: deployer.NewRepos(r.client)}}})
	for i, project := range []string{"shop/site", "shop/web"} {
		r.deliver(store.Delivery{Key: project, Event: "Pipeline Hook", Body: fixtures.PipelineSuccess(t,
			fixtures.Build{ProjectID: int64(10 - i), Project: project, Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: int64(80 + i)})})
	}
	r.run(w.Run)

	fixtures.Eventually(t, 5*time.Second, "shop/web's deploy recorded", func() error {
		if n := r.st.InboxDepth(); n != 0 {
			return fmt.Errorf("%d deliveries wait", n)
		}
		return nil
	})
	ds, err := r.st.Deployments(func(store.Deployment) bool { return true })
	if err != nil || len(ds) != 1 || ds[0].Project != "shop/web" {
		t.Errorf("deployments %+v (%v); want shop/web's only", ds, err)
	}
	select {
	case <-r.release:
		t.Fatal("GitLab answered; the test proves nothing")
	default:
	}
}

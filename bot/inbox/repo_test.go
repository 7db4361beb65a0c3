package inbox_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// siteText adds app site of shop/site to cfgText, and opens shop/site's
// .shipbot.yaml, so a build of it reads the repository first.
const siteText = cfgText + `  - name: site
    project: shop/site
    environments:
      dev: {}
projects:
  - path: shop/site
    environments: [dev]
`

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// sitePipelines puts shop/site's pipelines 80 (commit a) and 82 (commit b)
// in the inbox, and shop/web's 81 between them.
func sitePipelines(t *testing.T, r *rig) {
	for _, b := range []fixtures.Build{
		{ProjectID: 10, Project: "shop/site", Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 80},
		{ProjectID: 9, Project: "shop/web", Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 81},
		{ProjectID: 10, Project: "shop/site", Ref: "dev", SHA: strings.Repeat("b", 40), PipelineID: 82},
	} {
		r.deliver(store.Delivery{Key: fmt.Sprint(b.PipelineID), Event: "Pipeline Hook", Body: fixtures.PipelineSuccess(t, b)})
	}
}

func pipelinesOf(t *testing.T, st *store.Store, project string) []int64 {
	t.Helper()
	ds, err := st.Deployments(func(d store.Deployment) bool { return d.Project == project })
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.PipelineID)
	}
	return ids
}

// TestUnreadableRepoFileParksItsDelivery: a GitLab that does not send
// shop/site's archive holds the inbox for RepoTimeout, not for as long as
// it hangs. shop/web's deploy behind it is recorded; shop/site's build is
// not refused but left in the inbox, and its later build waits behind it
// rather than overtake it. Once GitLab answers, both are recorded, in order.
func TestUnreadableRepoFileParksItsDelivery(t *testing.T) {
	// No timeout of the client's own: GitLab holds the archive until freed.
	r := newRig(t, siteText, gitlab.WithHTTPClient(&http.Client{}))
	r.gl.SetProjectPath(10, "shop/site")
	r.hold("GET", "projects/", nil)
	clock := &testClock{now: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	w := inbox.NewWorker(inbox.Worker{Config: r.cfg, Store: r.st, Deploys: wakeFunc(func() {}), Log: r.log, RepoTimeout: 200 * time.Millisecond, Now: clock.Now,
		Apps: deployer.Apps{Config: r.cfg, Sources: deployer.Sources{Repos: deployer.NewRepos(r.client)}}})
	sitePipelines(t, r)
	r.run(w.Run)

	fixtures.Eventually(t, 5*time.Second, "shop/web's deploy recorded", func() error {
		if ids := pipelinesOf(t, r.st, "shop/web"); len(ids) != 1 {
			return fmt.Errorf("shop/web's deployments: pipelines %v", ids)
		}
		return nil
	})
	// The depth is counted down just after the delivery's transaction
	// commits, so it may lag the deployment that transaction recorded.
	fixtures.Eventually(t, 5*time.Second, "shop/site's 2 builds left in the inbox", func() error {
		if n := r.st.InboxDepth(); n != 2 {
			return fmt.Errorf("inbox depth %d", n)
		}
		return nil
	})
	if ids := pipelinesOf(t, r.st, "shop/site"); len(ids) != 0 {
		t.Errorf("shop/site's deployments: pipelines %v, want none yet", ids)
	}

	for _, c := range "ab" {
		r.gl.SetCommit(10, strings.Repeat(string(c), 40), map[string]string{"README.md": "shop/site\n"})
	}
	r.free()
	clock.Advance(6 * time.Second) // past the first wait, 5s
	w.Wake()
	fixtures.Eventually(t, 10*time.Second, "shop/site's builds recorded", func() error {
		if n := r.st.InboxDepth(); n != 0 {
			return fmt.Errorf("%d deliveries wait", n)
		}
		return nil
	})
	if ids := pipelinesOf(t, r.st, "shop/site"); !slices.Equal(ids, []int64{80, 82}) {
		t.Errorf("shop/site's deployments: pipelines %v, want 80 then 82", ids)
	}
}

// TestParkedDeliveryIsRefusedAfterRepoRetryFor: a repository that stays
// unreadable for RepoRetryFor gets its build refused, as a refused file
// would, so the inbox does not keep it, nor the project's later builds,
// for ever.
func TestParkedDeliveryIsRefusedAfterRepoRetryFor(t *testing.T) {
	r := newRig(t, siteText)
	r.gl.SetProjectPath(10, "shop/site")
	r.gl.Outage("GET", "projects/", http.StatusBadGateway)
	clock := &testClock{now: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	w := inbox.NewWorker(inbox.Worker{Config: r.cfg, Store: r.st, Deploys: wakeFunc(func() {}), Log: r.log, Now: clock.Now, RepoRetryFor: time.Minute,
		Apps: deployer.Apps{Config: r.cfg, Sources: deployer.Sources{Repos: deployer.NewRepos(r.client)}}})
	sitePipelines(t, r)
	r.run(w.Run)
	fixtures.Eventually(t, 5*time.Second, "shop/site's builds parked", func() error {
		if n := r.st.InboxDepth(); n != 2 {
			return fmt.Errorf("%d deliveries wait, want 2", n)
		}
		return nil
	})
	// Waits of 5s, 10s, 20s, 40s take the retries past the minute. The
	// clock moves on until the builds go: the first failure's time is when
	// the worker's first attempt ends (the client retries a 502 first),
	// which a fixed number of steps could overtake (CI saw it).
	fixtures.Eventually(t, 10*time.Second, "shop/site's builds refused", func() error {
		if n := r.st.InboxDepth(); n != 0 {
			clock.Advance(41 * time.Second)
			w.Wake()
			return fmt.Errorf("%d deliveries wait", n)
		}
		return nil
	})
	if ids := pipelinesOf(t, r.st, "shop/site"); len(ids) != 0 {
		t.Errorf("shop/site's deployments: pipelines %v, want none", ids)
	}
}

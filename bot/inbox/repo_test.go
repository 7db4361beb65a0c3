package inbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// TestHangingRepoFileIsBounded: a GitLab that never sends shop/site's
// archive holds the inbox for RepoTimeout, not for as long as it hangs:
// shop/web's deploy behind it is recorded while the download still hangs,
// and shop/site's build is refused, recording nothing.
func TestHangingRepoFileIsBounded(t *testing.T) {
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(10, "shop/site")
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	fake.BeforeNext("GET", "projects/", func() { <-release })
	client, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0), gitlab.WithHTTPClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("shipbot.yaml", []byte(cfgText+"projects:\n  - path: shop/site\n    environments: [dev]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := inbox.NewWorker(inbox.Worker{Config: cfg, Store: st, Deploys: wakeFunc(func() {}), Log: quiet, RepoTimeout: 200 * time.Millisecond,
		Apps: deployer.Apps{Config: cfg, Sources: deployer.Sources{Repos: deployer.NewRepos(client)}}})
	for i, project := range []string{"shop/site", "shop/web"} {
		body := fixtures.PipelineSuccess(t, fixtures.Build{ProjectID: int64(10 - i), Project: project, Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: int64(80 + i)})
		if _, _, err := st.Accept(t.Context(), store.Delivery{Key: project, Event: "Pipeline Hook", Body: body, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() { cancel(); once.Do(func() { close(release) }); <-done })
	go func() { defer close(done); _ = w.Run(ctx) }()

	fixtures.Eventually(t, 5*time.Second, "shop/web's deploy recorded", func() error {
		if n := st.InboxDepth(); n != 0 {
			return fmt.Errorf("%d deliveries wait", n)
		}
		return nil
	})
	ds, err := st.Deployments(func(store.Deployment) bool { return true })
	if err != nil || len(ds) != 1 || ds[0].Project != "shop/web" {
		t.Errorf("deployments %+v (%v); want shop/web's only", ds, err)
	}
	select {
	case <-release:
		t.Fatal("GitLab answered; the test proves nothing")
	default:
	}
}

package govern_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token     = "glpat-govern-test"
	projectID = int64(9)
	project   = "shop/web"
)

// nightly is Monday 2026-03-02, 23:00 UTC: inside a freeze from 22:00 to 06:00.
var nightly = time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)

func newGitLab(t *testing.T) (*fakegitlab.Server, *gitlab.Client) {
	t.Helper()
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(projectID, project)
	client, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	return fake, client
}

// engine is a release engine on a temp store with no cluster: a release
// held in Pending never needs one.
func engine(t *testing.T, clk *fakeclock.Clock, freezes release.Freezes) *release.Stepper {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: clk, Freezes: freezes,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func webRelease(env string) release.Release {
	return release.Release{
		App: "web", Project: project, Environment: env, Cluster: "c1", Namespace: "web", Strategy: release.Canary,
		From: release.Revision{Name: "v1-0-0", Image: "web:1.0.0"}, To: release.Revision{Name: "v1-1-0", Image: "web:1.1.0", Ref: "v1.1.0"},
		Stages: []release.Stage{{Target: 10}, {Target: 100}}, Params: templates.Params{Ports: []templates.Port{{Port: 8080}}},
	}
}

func TestGitLabFreezePeriodBlocksARelease(t *testing.T) {
	fake, client := newGitLab(t)
	fake.AddFreezePeriod(projectID, fakegitlab.FreezePeriod{FreezeStart: "0 22 * * *", FreezeEnd: "0 6 * * *", CronTimezone: "UTC"})
	clk := fakeclock.New(nightly)
	freezes := &govern.GitLabFreezes{GitLab: client, TTL: -1}
	e := engine(t, clk, freezes)
	rel, err := e.Create(t.Context(), webRelease("prod2"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Step(t.Context(), rel.ID)
	if err != nil {
		t.Fatalf("step in a freeze: %v", err)
	}
	got, _ := e.Get(t.Context(), rel.ID)
	want := "frozen until 2026-03-03 06:00 UTC (GitLab freeze period: 0 22 * * * to 0 6 * * * UTC)"
	if got.Phase != release.Pending || got.Hold == nil || got.Hold.Kind != release.HoldFreeze || got.Hold.Message != want {
		t.Fatalf("in a freeze: phase %s, hold %+v; want Pending and %q", got.Phase, got.Hold, want)
	}
	if !strings.HasSuffix(res.Summary, want) || res.RequeueAfter != release.HoldPoll {
		t.Errorf("step result: %q after %s", res.Summary, res.RequeueAfter)
	}
	if last := got.History[len(got.History)-1]; last.Kind != release.EntryEvent || last.Message != "Held: "+want {
		t.Errorf("history ends %+v, want the hold", last)
	}

	// Stepping again while frozen notes nothing new.
	if _, err := e.Step(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.Get(t.Context(), rel.ID); len(again.History) != len(got.History) {
		t.Errorf("a second step in the freeze added history: %v", again.History[len(got.History):])
	}

	// The period ends at 06:00; a project without periods is never frozen.
	if _, frozen, err := freezes.Frozen(t.Context(), got, time.Date(2026, 3, 3, 6, 0, 0, 0, time.UTC)); err != nil || frozen {
		t.Errorf("at 06:00: frozen %v, %v", frozen, err)
	}
	other := got
	other.Project = "shop/api"
	fake.SetProjectPath(10, "shop/api")
	if _, frozen, err := freezes.Frozen(t.Context(), other, nightly); err != nil || frozen {
		t.Errorf("another project: frozen %v, %v", frozen, err)
	}
}

func TestGitLabFreezePeriodErrors(t *testing.T) {
	fake, client := newGitLab(t)
	fake.AddFreezePeriod(projectID, fakegitlab.FreezePeriod{FreezeStart: "not a cron", FreezeEnd: "0 6 * * *"})
	freezes := &govern.GitLabFreezes{GitLab: client, TTL: -1}
	_, _, err := freezes.Frozen(t.Context(), webRelease("prod2"), nightly)
	if err == nil || !strings.Contains(err.Error(), `GitLab freeze period`) || !strings.Contains(err.Error(), `cron "not a cron"`) {
		t.Errorf("bad cron: %v", err)
	}
	// GitLab failing holds the release: the engine waits rather than
	// release into a freeze it could not read.
	fake.FailNext("GET", "/projects/9/freeze_periods", 502)
	e := engine(t, fakeclock.New(nightly), release.AllFreezes{freezes})
	rel, _ := e.Create(t.Context(), webRelease("prod2"))
	if _, err := e.Step(t.Context(), rel.ID); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("GitLab down: %v", err)
	}
	if got, _ := e.Get(t.Context(), rel.ID); got.Phase != release.Pending {
		t.Errorf("GitLab down: phase %s, want Pending", got.Phase)
	}
}

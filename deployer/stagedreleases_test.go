package deployer

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func releaseBuild(t *testing.T, s *store.Store, p stagedReleases, b Build) []string {
	t.Helper()
	var ids []string
	_, err := s.Update(func(tx *store.Tx) error {
		var err error
		ids, err = p.Build(tx, b, time.Unix(100, 0))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func storedReleases(t *testing.T, s *store.Store) []release.Release {
	t.Helper()
	var out []release.Release
	err := s.Releases(func(_ string, raw []byte) error {
		r, err := release.Decode(raw)
		out = append(out, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReleaserChainsProd1ThenProd2(t *testing.T) {
	cfg := exampleConfig(t)
	s := openStore(t)
	p := stagedReleases{Config: cfg}
	sha := strings.Repeat("cd", 20)
	b := Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.4.0", Tag: true, SHA: sha, User: "rm", PipelineID: 7,
		Jobs: []Job{{ID: 70, Name: "build-image", Status: "success"}}}

	ids := releaseBuild(t, s, p, b)
	if len(ids) != 2 {
		t.Fatalf("created %v, want one release for prod1 and one for prod2", ids)
	}
	rs := storedReleases(t, s)
	if len(rs) != 2 {
		t.Fatalf("stored %d releases, want 2", len(rs))
	}
	p1, p2 := rs[0], rs[1]
	if p1.Environment != "prod1" || p1.Cluster != "prod-eu" || p2.Environment != "prod2" || p2.Cluster != "prod-us" {
		t.Fatalf("targets %s/%s and %s/%s, want prod1/prod-eu then prod2/prod-us", p1.Environment, p1.Cluster, p2.Environment, p2.Cluster)
	}
	if p1.Requires != "" || p2.Requires != p1.ID {
		t.Errorf("requires %q and %q; want prod2 to require %s", p1.Requires, p2.Requires, p1.ID)
	}
	for _, r := range rs {
		if r.Phase != release.Pending || r.Strategy != release.Canary || !r.ResolveFrom {
			t.Errorf("%s: phase %s strategy %s resolveFrom %v; want a pending canary that reads what it replaces", r.ID, r.Phase, r.Strategy, r.ResolveFrom)
		}
		if r.To.Name != "v1-4-0" || r.To.SHA != sha || r.To.Image != "registry.example.com/shop/web:cdcdcdcd" {
			t.Errorf("%s: to %+v", r.ID, r.To)
		}
		if r.TriggeredBy != "rm" || r.PipelineID != 7 || r.JobID != 70 || r.Replicas != 6 {
			t.Errorf("%s: trace %q/%d/%d, replicas %d", r.ID, r.TriggeredBy, r.PipelineID, r.JobID, r.Replicas)
		}
	}

	// The same pipeline reported twice (a retried job) releases nothing new.
	if again := releaseBuild(t, s, p, b); len(again) != 0 {
		t.Errorf("a repeated pipeline created %v", again)
	}
	// A branch build never becomes a release.
	branch := b
	branch.Tag, branch.Ref, branch.PipelineID = false, "dev", 8
	if got := releaseBuild(t, s, p, branch); len(got) != 0 {
		t.Errorf("a branch build created releases %v", got)
	}
}

func TestReleaserQueuesNewerTag(t *testing.T) {
	cfg := exampleConfig(t)
	s := openStore(t)
	p := stagedReleases{Config: cfg}
	first := Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.4.0", Tag: true, SHA: strings.Repeat("a1", 20), PipelineID: 1}
	second := Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.5.0", Tag: true, SHA: strings.Repeat("b2", 20), PipelineID: 2}
	releaseBuild(t, s, p, first)
	releaseBuild(t, s, p, second)
	rs := storedReleases(t, s)
	if len(rs) != 4 {
		t.Fatalf("stored %d releases, want 4", len(rs))
	}
	byTarget := map[string][]release.Release{}
	for _, r := range rs {
		byTarget[r.Environment] = append(byTarget[r.Environment], r)
	}
	for env, list := range byTarget {
		old, newer := list[0], list[1]
		if len(newer.After) != 1 || newer.After[0] != old.ID {
			t.Errorf("%s: %s waits for %v, want [%s]", env, newer.To.Name, newer.After, old.ID)
		}
		if old.Phase != release.Pending || len(old.Intents) != 0 {
			t.Errorf("%s: the older release was touched (phase %s, intents %v); the example queues", env, old.Phase, old.Intents)
		}
	}
}

func TestRevisionName(t *testing.T) {
	for ref, want := range map[string]string{
		"v1.4.0":                "v1-4-0",
		"V2.0.0-rc.1":           "v2-0-0-rc-1",
		"...":                   "r-abcdef12",
		strings.Repeat("x", 50): strings.Repeat("x", 40),
	} {
		if got := RevisionName(ref, "abcdef1234"); got != want {
			t.Errorf("RevisionName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestReleaserGroupsAppsAndClustersOfAnEnvironment(t *testing.T) {
	cfg := exampleConfig(t)
	for i := range cfg.Environments {
		if cfg.Environments[i].Name == "prod1" {
			cfg.Environments[i].Clusters = []string{"prod-eu", "prod-us"}
		}
	}
	web := &cfg.Apps[0]
	web.Release.Group = "shop"
	api := *web
	api.Name = "api"
	cfg.Apps = append(cfg.Apps, api)
	s := openStore(t)
	b := Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.4.0", Tag: true, SHA: strings.Repeat("cd", 20), User: "rm", PipelineID: 7,
		Jobs: []Job{{ID: 70, Name: "build-image", Status: "success"}}}
	releaseBuild(t, s, stagedReleases{Config: cfg}, b)

	byTarget := map[string]release.Release{}
	for _, r := range storedReleases(t, s) {
		byTarget[r.App+"/"+r.Environment+"/"+r.Cluster] = r
	}
	if len(byTarget) != 6 {
		t.Fatalf("releases %v, want web and api on prod1's two clusters and on prod2", slices.Collect(maps.Keys(byTarget)))
	}
	group := "shop/web/shop@prod1/cdcdcdcd/7"
	for _, app := range []string{"web", "api"} {
		eu, us, p2 := byTarget[app+"/prod1/prod-eu"], byTarget[app+"/prod1/prod-us"], byTarget[app+"/prod2/prod-us"]
		if eu.Group != group || us.Group != group || eu.Requires != "" || us.Requires != "" {
			t.Errorf("%s on prod1: groups %q %q, requires %q %q; want both clusters in group %s at once", app, eu.Group, us.Group, eu.Requires, us.Requires, group)
		}
		if p2.Group != "shop/web/shop@prod2/cdcdcdcd/7" || p2.Requires != eu.ID {
			t.Errorf("%s on prod2: group %q requires %q; want prod2's group after %s", app, p2.Group, p2.Requires, eu.ID)
		}
	}
}

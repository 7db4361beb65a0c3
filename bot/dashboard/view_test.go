package dashboard

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func dep(seq uint64, app, env, ref string, status store.Status, at time.Time) store.Deployment {
	return store.Deployment{
		ID: store.FormatID(seq), App: app, Project: "shop/" + app, Environment: env, Cluster: "c1",
		Ref: ref, SHA: strings.Repeat("ab", 20), Image: "registry.example.com/shop/" + app + ":" + ref,
		User: "dev-" + app, Status: status, Created: at, Finished: at.Add(time.Minute),
	}
}

func failed(d store.Deployment, reason string) store.Deployment {
	d.Reason = reason
	return d
}

func rel(seq uint64, app, env, from, to string, phase release.Phase, stage, percent int, created, updated time.Time) release.Release {
	return release.Release{
		ID: store.FormatReleaseID(seq), App: app, Project: "shop/" + app, Environment: env, Cluster: "c1", Strategy: release.Canary,
		From: release.Revision{Name: from}, To: release.Revision{Name: to, Image: "registry.example.com/shop/" + app + ":" + to, SHA: strings.Repeat("c0", 20), Ref: to},
		Stages: []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50, Continue: release.Manual}, {Target: 100, Continue: release.Auto}},
		Stage:  stage, Percent: percent, Phase: phase, TriggeredBy: "rel-manager", Created: created, Updated: updated,
	}
}

func cellOf(t *testing.T, o Overview, app, env string) Cell {
	t.Helper()
	col := slices.Index(o.Environments, env)
	for _, r := range o.Rows {
		if r.App == app && col >= 0 {
			return r.Cells[col]
		}
	}
	t.Fatalf("no cell %s × %s in %+v", app, env, o.Environments)
	return Cell{}
}

func TestBuildMatrix(t *testing.T) {
	now := t0.Add(5 * time.Hour)
	paused := rel(3, "web", "prod", "v1-0-0", "v1-1-0", release.Paused, 1, 10, t0.Add(3*time.Hour), t0.Add(4*time.Hour))
	paused.History = []release.Entry{
		{At: t0.Add(3 * time.Hour), Stage: 0, Kind: release.EntryEvent},
		{At: t0.Add(3*time.Hour + time.Minute), Stage: 0, Kind: release.EntryTransition},
		{At: t0.Add(4 * time.Hour), Stage: 1, Kind: release.EntryTransition, Phase: release.Paused},
	}
	in := Input{
		Environments: []string{"dev", "staging", "prod", "unused"},
		Deployments: []store.Deployment{
			dep(1, "web", "dev", "dev", store.StatusSucceeded, t0),
			failed(dep(3, "web", "dev", "dev", store.StatusFailed, t0.Add(2*time.Hour)), "ImagePullBackOff"),
			dep(4, "web", "dev", "dev", store.StatusSuperseded, t0.Add(3*time.Hour)), // never ran
			dep(2, "api", "qa", "main", store.StatusRunning, t0.Add(time.Hour)),
			{ID: store.FormatID(5), App: "web", Project: "shop/web", Environment: "review", Preview: "9!4", Status: store.StatusSucceeded, Created: t0},
		},
		Releases: []release.Release{
			paused,
			rel(1, "web", "prod", "", "v1-0-0", release.Succeeded, 1, 100, t0, t0.Add(time.Hour)),
			rel(2, "api", "prod", "v2-0-0", "v2-1-0", release.RolledBack, 0, 0, t0, t0.Add(time.Hour)),
		},
	}
	o := Build(in, now)
	if want := []string{"dev", "prod", "qa"}; !slices.Equal(o.Environments, want) {
		t.Errorf("columns %v, want %v: configured order first, unused ones left out, the preview environment only under previews", o.Environments, want)
	}
	if len(o.Rows) != 2 || o.Rows[0].App != "api" || o.Rows[1].App != "web" {
		t.Fatalf("rows %+v", o.Rows)
	}

	dev := cellOf(t, o, "web", "dev")
	if dev.Source != "d000000000003" || dev.Status != "failed" || dev.Class != "bad" || dev.Version != "dev" || dev.SHA != "abababab" || dev.Ago != "2h59m" || dev.By != "dev-web" || dev.Reason != "ImagePullBackOff" {
		t.Errorf("web × dev = %+v; want the newest deployment that ran", dev)
	}
	prod := cellOf(t, o, "web", "prod")
	if prod.Version != "v1-0-0" || prod.ReleaseID != "r000000000001" || prod.Status != "released" || prod.Releasing == nil || prod.Releasing.ID != paused.ID {
		t.Errorf("web × prod = %+v; want v1-0-0 from the succeeded release, and the paused one in flight", prod)
	}
	if api := cellOf(t, o, "api", "prod"); !api.Empty || api.Note != "v2-1-0 rolled back" || api.NoteID != "r000000000002" {
		t.Errorf("api × prod = %+v", api)
	}
	if empty := cellOf(t, o, "api", "dev"); !empty.Empty || empty.Releasing != nil {
		t.Errorf("api × dev = %+v, want empty", empty)
	}

	if len(o.InFlight) != 1 {
		t.Fatalf("in flight: %+v", o.InFlight)
	}
	p := o.InFlight[0]
	if p.Stage != 2 || p.Stages != 3 || p.Percent != 10 || p.Target != 50 || p.InStage != "1h" || p.Phase != release.Paused || p.Class != "wait" {
		t.Errorf("progress %+v; want stage 2/3 at 10 %% → 50 %%, 1h in the stage", p)
	}
	if p.Summary != release.Describe(paused, now) {
		t.Errorf("summary %q differs from what chat says", p.Summary)
	}
}

// A deployment newer than the last succeeded release wins the cell, as it
// is what the environment runs now; an older one does not.
func TestBuildNewestWins(t *testing.T) {
	r := rel(1, "web", "prod", "", "v1-0-0", release.Succeeded, 1, 100, t0, t0.Add(time.Hour))
	o := Build(Input{Deployments: []store.Deployment{dep(1, "web", "prod", "hotfix", store.StatusSucceeded, t0.Add(2*time.Hour))}, Releases: []release.Release{r}}, t0.Add(3*time.Hour))
	if c := cellOf(t, o, "web", "prod"); c.Version != "hotfix" {
		t.Errorf("cell %+v, want the newer deployment", c)
	}
	o = Build(Input{Deployments: []store.Deployment{dep(1, "web", "prod", "old", store.StatusSucceeded, t0.Add(-time.Hour))}, Releases: []release.Release{r}}, t0.Add(3*time.Hour))
	if c := cellOf(t, o, "web", "prod"); c.Version != "v1-0-0" {
		t.Errorf("cell %+v, want the newer release", c)
	}
}

func TestBuildQueuedReleasesShowTheOneRunning(t *testing.T) {
	running := rel(1, "web", "prod", "v1", "v2", release.Progressing, 0, 0, t0, t0)
	queued := rel(2, "web", "prod", "v2", "v3", release.Pending, 0, 0, t0.Add(time.Minute), t0.Add(time.Minute))
	o := Build(Input{Releases: []release.Release{queued, running}}, t0.Add(time.Hour))
	if c := cellOf(t, o, "web", "prod"); c.Releasing == nil || c.Releasing.ID != running.ID {
		t.Errorf("cell shows %+v, want the running release", c.Releasing)
	}
	if len(o.InFlight) != 2 || o.InFlight[0].ID != queued.ID {
		t.Errorf("in flight %+v, want newest first", o.InFlight)
	}
}

func TestBuildPreviews(t *testing.T) {
	now := t0.Add(26 * time.Hour)
	in := Input{
		Previews: []store.Preview{
			{Key: "9!4", Project: "shop/web", IID: 4, Title: "Faster checkout", WebURL: "https://gitlab.example.com/shop/web/-/merge_requests/4",
				SourceBranch: "feature-checkout", HeadSHA: strings.Repeat("1", 40), DeployedSHA: strings.Repeat("2", 40), Status: store.PreviewReady,
				URL: "http://mr-4-web.preview.local", User: "alice", LastActivity: t0.Add(20 * time.Hour)},
			{Key: "9!5", Project: "shop/web", IID: 5, Status: store.PreviewWaiting, HeadSHA: strings.Repeat("3", 40), LastActivity: t0.Add(25 * time.Hour)},
			{Key: "9!1", Project: "shop/web", IID: 1, Status: store.PreviewStopped, LastActivity: t0.Add(25 * time.Hour)},
		},
		Deployments: []store.Deployment{
			{ID: store.FormatID(2), App: "web", Environment: "review", Preview: "9!4", Created: t0.Add(20 * time.Hour)},
			{ID: store.FormatID(1), App: "web", Environment: "review", Preview: "9!4", Created: t0},
		},
	}
	o := Build(in, now)
	if len(o.Previews) != 2 || o.Previews[0].IID != 5 || o.Previews[1].IID != 4 {
		t.Fatalf("previews %+v; want the two not stopped, latest activity first", o.Previews)
	}
	p := o.Previews[1]
	if p.Age != "1d2h" || p.SHA != "22222222" || p.Class != "ok" || p.WebURL == "" || p.URL == "" {
		t.Errorf("preview %+v; want age from its first deployment and the deployed commit", p)
	}
	if w := o.Previews[0]; w.Age != "1h" || w.SHA != "33333333" || w.Class != "wait" {
		t.Errorf("waiting preview %+v; want age from its last activity and the head commit", w)
	}
	if len(o.Rows) != 0 {
		t.Errorf("preview deployments in the matrix: %+v", o.Rows)
	}
}

func TestDetail(t *testing.T) {
	r := rel(7, "web", "prod", "v1-0-0", "v1-1-0", release.Paused, 1, 10, t0, t0.Add(20*time.Minute))
	r.History = []release.Entry{
		{At: t0, Actor: release.EngineActor, Kind: release.EntryEvent, Phase: release.Pending, Stage: 0, Message: "created: canary v1-0-0 → v1-1-0"},
		{At: t0.Add(10 * time.Minute), Actor: "alice", Surface: release.SurfaceAPI, Kind: release.EntryIntent, Phase: release.Paused, Stage: 1, Message: "continue requested"},
	}
	d := Detail(r, t0.Add(30*time.Minute))
	if got := []string{d.Stages[0].State, d.Stages[1].State, d.Stages[2].State}; !slices.Equal(got, []string{"done", "current", "next"}) {
		t.Errorf("stage states %v", got)
	}
	if len(d.Timeline) != 2 {
		t.Fatalf("timeline %+v", d.Timeline)
	}
	if e := d.Timeline[0]; e.Actor != "shipbot" || e.Surface != "-" || e.Stage != "1/3" || e.Kind != release.EntryEvent {
		t.Errorf("first entry %+v", e)
	}
	if e := d.Timeline[1]; e.Actor != "alice" || e.Surface != "api" || e.Kind != release.EntryIntent || e.Message != "continue requested" || e.Stage != "2/3" {
		t.Errorf("second entry %+v", e)
	}
	if d.Progress.InStage != "20m" || !d.Active {
		t.Errorf("progress %+v", d.Progress)
	}
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 12 * time.Minute: "12m", 3 * time.Hour: "3h",
		3*time.Hour + 5*time.Minute: "3h5m", 50 * time.Hour: "2d2h", 48 * time.Hour: "2d",
	} {
		if got := Ago(d); got != want {
			t.Errorf("Ago(%s) = %q, want %q", d, got, want)
		}
	}
}

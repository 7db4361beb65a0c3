package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
)

const apiToken = "cli-test-token"

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// apiRig is a real shipbot API on a real engine and bbolt store, for the
// CLI to talk to.
type apiRig struct {
	url    string
	store  *store.Store
	engine *release.Stepper
	clock  *fakeclock.Clock // the engine's, the API's and the CLI's, moved by hand
}

func newAPIRig(t *testing.T) *apiRig {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := fakeclock.New(t0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: clk, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	api.New(api.Options{Releases: eng, Records: st, Token: apiToken, Log: log, Now: clk.Now}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &apiRig{url: srv.URL, store: st, engine: eng, clock: clk}
}

// create stores a three-stage canary of app to env, triggered by carol,
// and moves the clock on ten minutes.
func (r *apiRig) create(t *testing.T, app, env string) release.Release {
	t.Helper()
	rel, err := r.engine.Create(t.Context(), release.Release{
		App: app, Project: "shop/" + app, Environment: env, Cluster: "c1", Namespace: app, Strategy: release.Canary,
		From: release.Revision{Name: "v1", Image: app + ":1"}, To: release.Revision{Name: "v2", Image: app + ":2"},
		Stages:      []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50}, {Target: 100}},
		Params:      templates.Params{Ports: []templates.Port{{Port: 80}}},
		TriggeredBy: "carol", PipelineID: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(10 * time.Minute)
	return rel
}

// pause writes a release into Paused at stage 2 with 10 % on the new
// revision, where the engine leaves it after the manual first stage;
// stepping there needs a cluster, and these tests are about the CLI.
func (r *apiRig) pause(t *testing.T, id string) {
	t.Helper()
	err := r.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		var doc map[string]any
		if err := json.Unmarshal(stored, &doc); err != nil {
			return nil, err
		}
		doc["phase"], doc["stage"], doc["percent"] = release.Paused, 1, 10
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// releases runs `shipbot releases args...` against the rig as alice, with
// the rig's clock and UTC times.
func (r *apiRig) releases(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return r.releasesEnv(t, nil, args...)
}

func TestReleasesListTable(t *testing.T) {
	r := newAPIRig(t)
	r.create(t, "web", "prod")
	api1 := r.create(t, "api", "prod")
	r.create(t, "web", "staging")
	r.pause(t, api1.ID)
	r.clock.Advance(2 * time.Hour)
	out, _, err := r.releases(t, "list")
	if err != nil {
		t.Fatal(err)
	}
	want := `ID             APP  ENV      CLUSTER  FROM→TO  PHASE    STAGE    AGE    BY
r000000000003  web  staging  c1       v1→v2    Pending  1/3 0%   2h10m  carol
r000000000002  api  prod     c1       v1→v2    Paused   2/3 10%  2h20m  carol
r000000000001  web  prod     c1       v1→v2    Pending  1/3 0%   2h30m  carol
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _, err = r.releases(t, "list", "--app", "web", "--env", "prod")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "r000000000001  web  prod") {
		t.Errorf("list --app web --env prod: %v\n%s", err, out)
	}
	out, _, err = r.releases(t, "list", "--phase", "paused", "--active", "--since", "3h")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, api1.ID) {
		t.Errorf("list --phase paused: %v\n%s", err, out)
	}
	out, _, err = r.releases(t, "list", "--cluster", "nowhere")
	if err != nil || out != "No releases found.\n" {
		t.Errorf("empty list: %v %q", err, out)
	}
}

func TestReleasesListJSONPages(t *testing.T) {
	r := newAPIRig(t)
	for _, app := range []string{"a", "b", "c"} {
		r.create(t, app, "prod")
	}
	out, _, err := r.releases(t, "list", "-o", "json", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	var page api.Page
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(page.Items) != 2 || page.Items[0].App != "c" || page.Next != page.Items[1].ID || page.Items[0].Summary == "" {
		t.Fatalf("page %+v", page)
	}
	out, stderr, err := r.releases(t, "list", "--limit", "2")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(stderr, "more releases: add --cursor "+page.Next) {
		t.Errorf("table page hint: %v %q\n%s", err, stderr, out)
	}
	out, _, err = r.releases(t, "list", "--limit", "2", "--cursor", page.Next)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "r000000000001  a") {
		t.Errorf("second page: %v\n%s", err, out)
	}
}

func TestReleasesGet(t *testing.T) {
	r := newAPIRig(t)
	rel := r.create(t, "web", "prod")
	if _, _, err := r.releases(t, "pause", rel.ID, "--comment", "looking at logs"); err != nil {
		t.Fatal(err)
	}
	out, _, err := r.releases(t, "get", rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := `Release:    r000000000001
App:        web (shop/web)
Target:     prod · cluster c1 · namespace web
Revisions:  v1 (web:1) → v2 (web:2)
Strategy:   canary · stages 10 (manual) → 50 → 100 %
Phase:      Pending
Status:     pending · canary v1 → v2 in 3 stages (10 → 50 → 100 %)
Started:    2026-03-01 10:00:00 (10m ago) by carol
Pipeline:   #7

HISTORY
TIME                 ACTOR    SURFACE  PHASE    MESSAGE
2026-03-01 10:00:00  shipbot  -        Pending  created: canary v1 → v2
2026-03-01 10:10:00  alice    cli      Pending  pause requested: looking at logs
`
	if out != want {
		t.Errorf("get:\n%s\nwant:\n%s", out, want)
	}
	out, _, err = r.releases(t, "get", rel.ID, "-o", "json")
	var got api.Release
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.ID != rel.ID || len(got.History) != 2 {
		t.Errorf("get -o json: %v\n%s", err, out)
	}
}

func TestReleasesControls(t *testing.T) {
	tests := []struct {
		action string
		more   []string // after the release id
		want   release.Intent
	}{
		{"continue", nil, release.Intent{Kind: release.IntentContinue, Actor: "alice"}},
		{"promote", []string{"50"}, release.Intent{Kind: release.IntentPromote, Percent: 50, Actor: "alice"}},
		{"promote", []string{"100%", "--as", "bob"}, release.Intent{Kind: release.IntentPromote, Percent: 100, Actor: "bob"}},
		{"promote", []string{"full", "--comment", "gates green"}, release.Intent{Kind: release.IntentPromoteFull, Actor: "alice", Comment: "gates green"}},
		{"rollback", nil, release.Intent{Kind: release.IntentRollback, Actor: "alice"}},
		{"abort", nil, release.Intent{Kind: release.IntentAbort, Actor: "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.action+" "+strings.Join(tt.more, " "), func(t *testing.T) {
			r := newAPIRig(t)
			rel := r.create(t, "web", "prod")
			r.pause(t, rel.ID)
			out, _, err := r.releases(t, append([]string{tt.action, rel.ID}, tt.more...)...)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Surface = release.SurfaceCLI
			wantOut := rel.ID + ": " + tt.want.String() + " requested by " + tt.want.Actor + "; shipbot acts on it at its next step\n" +
				"web prod on c1: stage 2/3 · 10 % · waiting for approval 10m\n"
			if out != wantOut {
				t.Errorf("output %q, want %q", out, wantOut)
			}
			got, err := r.engine.Get(t.Context(), rel.ID)
			if err != nil || len(got.Intents) != 1 {
				t.Fatalf("intents %+v, %v", got.Intents, err)
			}
			in := got.Intents[0]
			in.Seq, in.At = 0, time.Time{}
			if in != tt.want {
				t.Errorf("recorded %+v, want %+v", in, tt.want)
			}
			if last := got.History[len(got.History)-1]; last.Actor != tt.want.Actor || last.Surface != release.SurfaceCLI {
				t.Errorf("history %+v", last)
			}
		})
	}
}

func TestReleasesControlJSON(t *testing.T) {
	r := newAPIRig(t)
	rel := r.create(t, "web", "prod")
	out, _, err := r.releases(t, "pause", rel.ID, "-o", "json")
	var got api.Release
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got.Intents) != 1 || got.Intents[0].Kind != release.IntentPause {
		t.Errorf("pause -o json: %v\n%s", err, out)
	}
}

// TestReleasesErrors checks the errors main prints as "shipbot: <error>"
// before exiting 1: the server's status and words, or what to fix locally.
func TestReleasesErrors(t *testing.T) {
	r := newAPIRig(t)
	rel := r.create(t, "web", "prod")
	r.pause(t, rel.ID)
	dir := t.TempDir()
	wrongFile, goodFile := filepath.Join(dir, "wrong"), filepath.Join(dir, "good")
	if err := os.WriteFile(wrongFile, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, []byte(apiToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantErr error
	}{
		{"wrong token in file", nil, []string{"list", "--token-file", wrongFile}, "401 Unauthorized: wrong API token", nil},
		{"token file missing", nil, []string{"list", "--token-file", filepath.Join(dir, "absent")}, "--token-file: open " + filepath.Join(dir, "absent"), nil},
		{"token and token file", nil, []string{"list", "--token", apiToken, "--token-file", goodFile}, "--token and --token-file both set: give one", nil},
		{"conflict", nil, []string{"pause", rel.ID}, "409 Conflict: it is already paused", release.ErrConflict},
		{"no such stage", nil, []string{"promote", rel.ID, "30"}, "422 Unprocessable Entity: 30 % is not one of the steps; allowed: 50, 100 %", release.ErrInvalid},
		{"bad percent", nil, []string{"promote", rel.ID, "150"}, "400 Bad Request: percent: 150 is not in 1..100", release.ErrInvalid},
		{"not found", nil, []string{"get", "r000000000404"}, "404 Not Found: release r000000000404 not found", store.ErrNotFound},
		{"wrong token", nil, []string{"list", "--token", "guess"}, "401 Unauthorized: wrong API token", nil},
		{"no token", map[string]string{envToken: ""}, []string{"list"}, "no API token: set --token-file, SHIPBOT_API_TOKEN or --token to api.token from shipbot.yaml", nil},
		{"no actor", map[string]string{"USER": ""}, []string{"abort", rel.ID}, "who is acting? set --as or $USER", nil},
		{"promote to words", nil, []string{"promote", rel.ID, "half"}, `promote to "half": want a stage's percentage like 50, or full`, nil},
		{"bad output", nil, []string{"list", "-o", "yaml"}, `-o "yaml": want table or json`, nil},
		{"bad since", nil, []string{"list", "--since", "yesterday"}, `--since "yesterday": want a duration like 24h or 7d`, nil},
		{"bad server", nil, []string{"list", "--server", "127.0.0.1:8080"}, `server "127.0.0.1:8080": want a URL like http://127.0.0.1:8080`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.releasesEnv(t, tt.env, tt.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v is not %v", err, tt.wantErr)
			}
		})
	}
	if got, _ := r.engine.Get(t.Context(), rel.ID); len(got.Intents) != 0 {
		t.Errorf("failed commands recorded %+v", got.Intents)
	}
	if _, _, err := r.releasesEnv(t, map[string]string{envToken: ""}, "list", "--token-file", goodFile); err != nil {
		t.Errorf("list with the token in a file: %v", err)
	}
}

// releasesEnv is releases with some environment variables overridden.
func (r *apiRig) releasesEnv(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	return r.command(t, newReleasesCmd, env, args...)
}

// command runs the command newCmd builds against the rig, as releasesEnv
// does.
func (r *apiRig) command(t *testing.T, newCmd func(*releasesCLI) *cobra.Command, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv(envServer, r.url)
	t.Setenv(envToken, apiToken)
	t.Setenv("USER", "alice")
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	cmd := newCmd(&releasesCLI{now: r.clock.Now, loc: time.UTC})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestReleasesFromTheRootCommand(t *testing.T) {
	r := newAPIRig(t)
	rel := r.create(t, "web", "prod")
	t.Setenv(envServer, "http://127.0.0.1:1") // overridden by --server
	t.Setenv(envToken, "")
	out, err := run(t, "releases", "list", "--server", r.url, "--token", apiToken, "-o", "json")
	if err != nil || !strings.Contains(out, `"id": "`+rel.ID+`"`) {
		t.Errorf("shipbot releases list: %v\n%s", err, out)
	}
}

func TestParseSince(t *testing.T) {
	now := t0
	for s, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"2026-02-01T00:00:00Z": time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(s, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1h", "0s", "xd", "week"} {
		if _, err := parseSince(s, now); err == nil {
			t.Errorf("parseSince(%q): no error", s)
		}
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/templates"
)

// succeed writes release id as ended at 100 %, as the engine leaves one
// that succeeded; stepping there needs a cluster.
func (r *apiRig) succeed(t *testing.T, id string) {
	t.Helper()
	err := r.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		var doc map[string]any
		if err := json.Unmarshal(stored, &doc); err != nil {
			return nil, err
		}
		doc["phase"], doc["stage"], doc["percent"] = release.Succeeded, 3, 100
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRollbackToLastGoodAsksFirst(t *testing.T) {
	r := newAPIRig(t)
	good := r.create(t, "web", "prod") // v1 → v2
	r.succeed(t, good.ID)
	bad, err := r.engine.Create(t.Context(), release.Release{
		App: "web", Project: "shop/web", Environment: "prod", Cluster: "c1", Namespace: "web", Strategy: release.Canary,
		From: release.Revision{Name: "v2", Image: "web:2"}, To: release.Revision{Name: "v3", Image: "web:3"},
		Stages: []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 100}},
		Params: templates.Params{Ports: []templates.Port{{Port: 80}}}, TriggeredBy: "carol",
	})
	if err != nil {
		t.Fatal(err)
	}
	r.pause(t, bad.ID)
	rollback := func(stdin string, args ...string) (string, error) {
		return r.commandIn(t, newRollbackCmd, stdin, append([]string{"--to", "last-good", "--project", "shop/web"}, args...)...)
	}

	out, err := rollback("no\n")
	if err == nil || !strings.Contains(err.Error(), "not confirmed; nothing was done") {
		t.Fatalf("declined: %v", err)
	}
	for _, want := range []string{"prod on c1: web v3 → v2 (rollback of " + bad.ID + ")", "  image:   web:3 → web:2", "Type yes to confirm"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if got, _ := r.engine.Get(t.Context(), bad.ID); len(got.Intents) != 0 {
		t.Fatalf("a declined rollback recorded %+v", got.Intents)
	}

	out, err = rollback("yes\n", "--reason", "v3 is broken")
	if err != nil || !strings.Contains(out, bad.ID+": web in prod on c1") {
		t.Fatalf("confirmed: %v\n%s", err, out)
	}
	got, _ := r.engine.Get(t.Context(), bad.ID)
	if len(got.Intents) != 1 || got.Intents[0].Kind != release.IntentRollback || got.Intents[0].Actor != "alice" ||
		got.Intents[0].Surface != release.SurfaceCLI || got.Intents[0].Comment != "back to last good: v3 is broken v2" {
		t.Errorf("intents %+v", got.Intents)
	}
	if _, err := rollback("", "--to", "v1"); err == nil || !strings.Contains(err.Error(), `--to "v1": the only target is last-good`) {
		t.Errorf("--to v1: %v", err)
	}
}

// commandIn is command with stdin, returning stdout.
func (r *apiRig) commandIn(t *testing.T, newCmd func(*releasesCLI) *cobra.Command, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv(envServer, r.url)
	t.Setenv(envToken, apiToken)
	t.Setenv("USER", "alice")
	var out strings.Builder
	cmd := newCmd(&releasesCLI{now: r.clock.Now})
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

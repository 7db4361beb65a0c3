package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// deploy records a deployment of app at ref, created at the rig's clock,
// and moves the clock on ten minutes.
func (r *apiRig) deploy(t *testing.T, seq uint64, app, env, ref, user string, status store.Status) {
	t.Helper()
	err := r.store.PutDeployment(store.Deployment{
		ID: store.FormatID(seq), App: app, Project: "shop/" + app, Environment: env, Cluster: "c1", Namespace: app,
		Ref: ref, SHA: strings.Repeat(string(rune('0'+seq)), 40), Image: "registry.example.com/shop/" + app + ":" + ref,
		User: user, Status: status, Created: r.clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(10 * time.Minute)
}

func TestDeploymentsListTable(t *testing.T) {
	r := newAPIRig(t)
	r.deploy(t, 1, "web", "dev", "dev", "dora", store.StatusSucceeded)
	r.deploy(t, 2, "api", "dev", "main", "eve", store.StatusFailed)
	r.deploy(t, 3, "web", "staging", "release-1", "dora", store.StatusRunning)
	out, _, err := r.command(t, newDeploymentsCmd, nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	want := `ID             APP  ENV      CLUSTER  REF        SHA       STATUS     AGE  BY
d000000000003  web  staging  c1       release-1  33333333  running    10m  dora
d000000000002  api  dev      c1       main       22222222  failed     20m  eve
d000000000001  web  dev      c1       dev        11111111  succeeded  30m  dora
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	for _, tt := range []struct {
		args []string
		want []string // ids in order
	}{
		{[]string{"--env", "dev"}, []string{"d000000000002", "d000000000001"}},
		{[]string{"--user", "dora", "--status", "running,succeeded"}, []string{"d000000000003", "d000000000001"}},
		{[]string{"--app", "api", "--project", "shop/api", "--ref", "main"}, []string{"d000000000002"}},
		{[]string{"--since", "25m"}, []string{"d000000000003", "d000000000002"}},
		{[]string{"--until", "25m"}, []string{"d000000000001"}},
		{[]string{"--cluster", "elsewhere"}, nil},
	} {
		out, _, err := r.command(t, newDeploymentsCmd, nil, append([]string{"list", "-o", "json"}, tt.args...)...)
		var page api.DeploymentPage
		if err != nil || json.Unmarshal([]byte(out), &page) != nil {
			t.Fatalf("list %v: %v\n%s", tt.args, err, out)
		}
		var got []string
		for _, d := range page.Items {
			got = append(got, d.ID)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("list %v: %v, want %v", tt.args, got, tt.want)
		}
	}
	out, _, err = r.command(t, newDeploymentsCmd, nil, "list", "--env", "prod")
	if err != nil || out != "No deployments found.\n" {
		t.Errorf("empty list: %v %q", err, out)
	}
}

func TestDeploymentsListPages(t *testing.T) {
	r := newAPIRig(t)
	for i := range uint64(3) {
		r.deploy(t, i+1, "web", "dev", "dev", "dora", store.StatusSucceeded)
	}
	out, stderr, err := r.command(t, newDeploymentsCmd, nil, "list", "--limit", "2")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(stderr, "more deployments: add --cursor d000000000002") {
		t.Fatalf("first page: %v %q\n%s", err, stderr, out)
	}
	out, stderr, err = r.command(t, newDeploymentsCmd, nil, "list", "--limit", "2", "--cursor", "d000000000002")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "d000000000001") || stderr != "" {
		t.Errorf("second page: %v %q\n%s", err, stderr, out)
	}
}

func TestPreviewsList(t *testing.T) {
	r := newAPIRig(t)
	_, err := r.store.Update(func(tx *store.Tx) error {
		for _, p := range []store.Preview{
			{Key: "9!4", Project: "shop/web", IID: 4, SourceBranch: "feature-checkout", HeadSHA: strings.Repeat("4", 40), DeployedSHA: strings.Repeat("5", 40),
				Status: store.PreviewReady, URL: "http://mr-4-web.preview.local", User: "alice", LastActivity: t0.Add(-time.Hour), Updated: t0},
			{Key: "9!2", Project: "shop/web", IID: 2, SourceBranch: "feature-old", HeadSHA: strings.Repeat("2", 40),
				Status: store.PreviewStopped, LastActivity: t0.Add(-48 * time.Hour), Updated: t0.Add(-24 * time.Hour)},
		} {
			if err := tx.PutPreview(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The preview's first deployment, 30 minutes ago, is its age.
	if err := r.store.PutDeployment(store.Deployment{ID: store.FormatID(1), App: "web", Project: "shop/web", Environment: "review",
		Preview: "9!4", Status: store.StatusSucceeded, Created: t0.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	out, _, err := r.command(t, newPreviewsCmd, nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	want := `MR          BRANCH            SHA       STATUS   URL                            AGE  BY
shop/web!4  feature-checkout  55555555  ready    http://mr-4-web.preview.local  30m  alice
shop/web!2  feature-old       22222222  stopped  -                              2d   -
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _, err = r.command(t, newPreviewsCmd, nil, "list", "--status", "ready", "--env", "review", "-o", "json")
	var page api.PreviewPage
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Items) != 1 || page.Items[0].Environment != "review" || page.Items[0].Key != "9!4" {
		t.Errorf("list --status ready --env review -o json: %v\n%s", err, out)
	}
}

func TestRecordsErrors(t *testing.T) {
	r := newAPIRig(t)
	for _, tt := range []struct {
		name    string
		newCmd  func(*releasesCLI) *cobra.Command
		env     map[string]string
		args    []string
		want    string
		wantErr error
	}{
		{"bad status", newDeploymentsCmd, nil, []string{"list", "--status", "done"}, `400 Bad Request: status: unknown status "done"`, release.ErrInvalid},
		{"preview status", newPreviewsCmd, nil, []string{"list", "--status", "running"}, `400 Bad Request: status: unknown status "running"`, release.ErrInvalid},
		{"wrong token", newPreviewsCmd, nil, []string{"list", "--token", "guess"}, "401 Unauthorized: wrong API token", nil},
		{"no token", newDeploymentsCmd, map[string]string{envToken: ""}, []string{"list"}, "no API token: set --token-file, SHIPBOT_API_TOKEN or --token", nil},
		{"bad until", newDeploymentsCmd, nil, []string{"list", "--until", "soon"}, `--until "soon": want a duration like 24h or 7d`, nil},
		{"bad output", newPreviewsCmd, nil, []string{"list", "-o", "yaml"}, `-o "yaml": want table or json`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.command(t, tt.newCmd, tt.env, tt.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v is not %v", err, tt.wantErr)
			}
		})
	}
}

func TestRecordsFromTheRootCommand(t *testing.T) {
	r := newAPIRig(t)
	r.deploy(t, 1, "web", "dev", "dev", "dora", store.StatusSucceeded)
	t.Setenv(envServer, r.url)
	t.Setenv(envToken, apiToken)
	out, err := run(t, "deployments", "list")
	if err != nil || !strings.Contains(out, "d000000000001  web") {
		t.Errorf("shipbot deployments list: %v\n%s", err, out)
	}
	out, err = run(t, "previews", "list", "-o", "json")
	if err != nil || !strings.Contains(out, `"items": []`) {
		t.Errorf("shipbot previews list: %v\n%s", err, out)
	}
}

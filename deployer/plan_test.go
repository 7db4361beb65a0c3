package deployer

import (
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
)

func exampleConfig(t *testing.T) *config.Config {
	t.Helper()
	t.Setenv("SHIPBOT_GITLAB_TOKEN", "x")
	t.Setenv("SHIPBOT_WEBHOOK_SECRET", "y")
	cfg, err := config.Load("../docs/examples/shipbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPlan(t *testing.T) {
	cfg := exampleConfig(t)
	sha := strings.Repeat("ab", 20)
	jobs := []Job{{ID: 10, Name: "build-image", Status: "success"}, {ID: 11, Name: "test", Status: "success"}, {ID: 12, Name: "lint", Status: "failed"}}
	cases := []struct {
		name string
		b    Build
		want []string // env/cluster
	}{
		{"dev pipeline", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "dev"}, []string{"dev/nonprod"}},
		{"feature pipeline", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "feature-login-v2"}, []string{"feature/nonprod"}},
		{"release pipeline", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "release-2.1"}, []string{"release/nonprod"}},
		// A tag build for an app with a staged strategy belongs to the release
		// engine (see stagedReleases); Plan leaves it alone.
		{"staged tag build is left to the release engine", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.4.0", Tag: true}, nil},
		{"a branch named like a tag is not a tag", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "v1.4.0"}, nil},
		{"unmapped branch", Build{Kind: TriggerPipeline, Project: "shop/web", Ref: "main"}, nil},
		{"other project", Build{Kind: TriggerPipeline, Project: "shop/api", Ref: "dev"}, nil},
		{"push when the app waits for pipelines", Build{Kind: TriggerPush, Project: "shop/web", Ref: "dev"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.b.SHA, c.b.Jobs, c.b.User, c.b.PipelineID = sha, jobs, "alice", 99
			got, err := Plan(cfg, c.b, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, d := range got {
				names = append(names, d.Environment+"/"+d.Cluster)
				if d.Image != "registry.example.com/shop/web:abababab" || d.JobID != 10 || d.User != "alice" || d.PipelineID != 99 || d.Status != "pending" {
					t.Errorf("deployment %+v", d)
				}
			}
			if strings.Join(names, ",") != strings.Join(c.want, ",") {
				t.Errorf("planned %v, want %v", names, c.want)
			}
		})
	}
}

func TestBuildJob(t *testing.T) {
	jobs := []Job{{ID: 5, Name: "build", Status: "success"}, {ID: 9, Name: "test", Status: "success"}, {ID: 12, Name: "deploy", Status: "skipped"}}
	if got := buildJob(jobs, ""); got != 9 {
		t.Errorf("default picks %d, want the last successful job 9", got)
	}
	if got := buildJob(jobs, "build"); got != 5 {
		t.Errorf("named picks %d, want 5", got)
	}
	if got := buildJob(jobs, "deploy"); got != 0 {
		t.Errorf("a named job that did not succeed gives %d, want 0", got)
	}
}

// Package plan benchmarks the plan on a merge request end to end: from the
// pipeline-success webhook of a merge request to shipbot's plan comment on
// it, through shipbot's real Main, a fake GitLab serving the repository's
// archive, and a server-side-apply dry run against the local control plane.
package plan

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &kc) }

const (
	secret  = "bench-secret"
	token   = "bench-token"
	project = int64(10)
	rounds  = 30 // merge requests, each planned cold, then once more cached
	// extraConfigMaps are added to the demo chart's own objects to make a
	// chart of about 30 objects.
	extraConfigMaps = 26
	target          = 2 * time.Second // issue 9: plan comment ≤ 2 s p99
)

// BenchmarkPlan measures, for each of 30 merge requests into dev, the time
// from the webhook's 200 to shipbot's plan comment:
//   - cold: the merge request's pipeline succeeded at a commit shipbot has
//     not read, so it downloads the archive, renders the chart and asks the
//     apiserver for a dry run of each object;
//   - cached: a /plan comment on the same head, whose archive shipbot keeps
//     by sha; it renders and dry-runs again, and edits the same comment.
func BenchmarkPlan(b *testing.B) {
	cluster.Require(b, kc)
	gl := fakegitlab.New(b, token)
	gl.SetProjectPath(project, "shop/site")
	gl.SetMember(project, 700, 30)
	chart := chartFiles(b)
	ns := kc.NewNamespace(b)
	m := &serve.Main{Config: benchConfig(b, gl.URL(), ns), Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })

	var cold, cached []time.Duration
	objects := ""
	for i := int64(1); i <= rounds; i++ {
		head := fmt.Sprintf("%040x", 0xbe00+i)
		files := maps.Clone(chart)
		files["deploy/values.yaml"] = fmt.Sprintf("greeting: from merge request %d\n", i)
		gl.SetCommit(project, head, files)
		mr := fixtures.MR{ProjectID: project, Project: "shop/site", IID: i, SourceBranch: fmt.Sprintf("feature-%d", i), HeadSHA: head, Username: "dev-person", UserID: 700}
		gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: i, SourceBranch: mr.SourceBranch, TargetBranch: "dev", HeadSHA: head})

		start := time.Now()
		post(b, m, "Pipeline Hook", fixtures.MRPipeline(b, mr, 1000+i))
		first := waitPlan(b, gl, i, func(fakegitlab.Note) bool { return true })
		cold = append(cold, time.Since(start))
		objects = counts(first.Body)

		id := gl.AddNote(project, i, fakegitlab.Note{Body: "/plan", Author: "dev-person", AuthorID: 700})
		start = time.Now()
		post(b, m, "Note Hook", fixtures.Note(b, mr, id, "/plan", "create"))
		waitPlan(b, gl, i, func(n fakegitlab.Note) bool { return n.UpdatedAt.After(first.UpdatedAt) })
		cached = append(cached, time.Since(start))
	}
	b.Logf("plan of a chart of %d objects into an empty namespace: %s", 4+extraConfigMaps, objects)
	report(b, "cold", cold)
	report(b, "cached", cached)
}

// waitPlan waits for merge request iid's one plan comment to satisfy ok,
// reading the fake GitLab every 2 ms.
func waitPlan(b *testing.B, gl *fakegitlab.Server, iid int64, ok func(fakegitlab.Note) bool) fakegitlab.Note {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var plans []fakegitlab.Note
		for _, n := range gl.Notes(project, iid) {
			if strings.Contains(n.Body, "<!-- shipbot:plan -->") {
				plans = append(plans, n)
			}
		}
		if len(plans) > 1 {
			b.Fatalf("merge request %d has %d plan comments, want one edited in place", iid, len(plans))
		}
		if len(plans) == 1 && ok(plans[0]) {
			return plans[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("no plan comment on merge request %d after 60s", iid)
	return fakegitlab.Note{}
}

// counts is the plan's "N created, N changed, N unchanged" line.
func counts(body string) string {
	for line := range strings.SplitSeq(body, "\n") {
		if strings.Contains(line, " created, ") {
			return strings.TrimSpace(line)
		}
	}
	return "(no counts in the plan)"
}

func report(b *testing.B, name string, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1)+0.5)] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, name+"-p99-ms")
	verdict := "met"
	if pct(0.99) > target {
		verdict = "MISSED"
	}
	b.Logf("%s: webhook 200 → plan comment, %d merge requests: p50 %s  p99 %s  min %s  max %s; target p99 ≤ %s: %s",
		name, len(lat), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond),
		lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), target, verdict)
}

func post(b *testing.B, m *serve.Main, event string, body []byte) {
	b.Helper()
	if code := fixtures.PostWebhook(b, m.Addr(), secret, event, body); code != http.StatusOK {
		b.Fatalf("%s: webhook answered %d", event, code)
	}
}

// chartFiles is the demo chart of templates/source/testdata under
// deploy/chart, with extraConfigMaps more ConfigMaps, and the project's
// .shipbot.yaml.
func chartFiles(b *testing.B) map[string]string {
	b.Helper()
	root, err := filepath.Abs("../../../templates/source/testdata/helm/demo")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	err = fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path.Join(root, p))
		files["deploy/chart/"+p] = string(data)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	files["deploy/chart/templates/settings.yaml"] = fmt.Sprintf(`{{- range $i := until %d }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-setting-{{ $i }}
data:
  index: "{{ $i }}"
  greeting: {{ $.Values.greeting | quote }}
{{- end }}
`, extraConfigMaps)
	files[".shipbot.yaml"] = `apps:
  - name: site
    registry: registry.example.com
    source:
      helm: {chart: deploy/chart, valuesFiles: [deploy/values.yaml]}
    environments:
      dev: {replicas: 2}
`
	return files
}

func benchConfig(b *testing.B, gitlabURL, ns string) *config.Config {
	b.Helper()
	text := fmt.Sprintf(`listen: 127.0.0.1:0
gitlab: {baseURL: %s, token: %s, webhookSecret: %s}
store: {path: %s}
clusters:
  - {name: local, kubeconfig: %s}
environments:
  - {name: dev, clusters: [local], namespace: %s, refs: {branches: ['^dev$']}}
apps: []
commands: {perUserPerMinute: 600, burst: 100} # one person types all 30 /plan
projects:
  - path: shop/site
    environments: [dev]
    allowedOverrides: [source, params, registry]
`, gitlabURL, token, secret, filepath.Join(b.TempDir(), "shipbot.db"), kc.KubeconfigPath(), ns)
	cfg, err := config.Parse("bench.yaml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

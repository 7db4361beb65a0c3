// Package preview benchmarks merge request previews end to end: from the
// pipeline-success webhook to the preview's Deployment being Available on
// the local control plane, through shipbot's real Main.
package preview

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{}, &kc) }

const (
	secret = "bench-secret"
	token  = "bench-token"
	mrs    = 40 // merge requests measured, one after another
)

// BenchmarkPreviewReady measures, for each of 40 merge requests, the time
// from posting its successful pipeline webhook to its preview Deployment
// being Available (as a watch on the apiserver sees it).
func BenchmarkPreviewReady(b *testing.B) {
	cluster.Require(b, kc)
	gl := fakegitlab.New(b, token)
	prefix := fmt.Sprintf("bench%d-", time.Now().Unix()%100000)
	m := &serve.Main{Config: benchConfig(b, gl.URL(), prefix), Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	available := watchAvailable(b, prefix)
	var lat []time.Duration
	for i := int64(1); i <= mrs; i++ {
		mr := fixtures.MR{ProjectID: 9, Project: "shop/web", IID: i, Action: "open", State: "opened",
			SourceBranch: fmt.Sprintf("feature-%d", i), HeadSHA: strings.Repeat(fmt.Sprint(i%10), 40), Username: "bench"}
		post(b, m, "Merge Request Hook", fixtures.MergeRequest(b, mr))
		ns := deployer.PreviewNamespace(prefix, "shop/web", 9, i)
		start := time.Now()
		post(b, m, "Pipeline Hook", fixtures.MRPipeline(b, mr, 1000+i))
		select {
		case at := <-available(ns):
			lat = append(lat, at.Sub(start))
		case <-time.After(60 * time.Second):
			b.Fatalf("preview %s not available after 60s", ns)
		}
	}
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1)+0.5)] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("pipeline webhook → preview Available, %d merge requests: p50 %s  p99 %s  min %s  max %s",
		len(lat), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

// watchAvailable watches Deployments in every namespace and records, per
// namespace with the prefix, the first time one is Available. The time is
// taken when the watch event arrives; waiting for it only polls the record.
func watchAvailable(b *testing.B, prefix string) func(ns string) <-chan time.Time {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := kc.Client().AppsV1().Deployments(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	first := map[string]time.Time{}
	go func() {
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted || !strings.HasPrefix(d.Namespace, prefix) || d.Status.AvailableReplicas < 1 {
				continue
			}
			mu.Lock()
			if _, dup := first[d.Namespace]; !dup {
				first[d.Namespace] = time.Now()
			}
			mu.Unlock()
		}
	}()
	return func(ns string) <-chan time.Time {
		out := make(chan time.Time, 1)
		go func() {
			for ctx.Err() == nil {
				mu.Lock()
				at, ok := first[ns]
				mu.Unlock()
				if ok {
					out <- at
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		return out
	}
}

func post(b *testing.B, m *serve.Main, event string, body []byte) {
	b.Helper()
	if code := fixtures.PostWebhook(b, m.Addr(), secret, event, body); code != http.StatusOK {
		b.Fatalf("%s answered %d", event, code)
	}
}

func benchConfig(b *testing.B, gitlabURL, prefix string) *config.Config {
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
gitlab: {baseURL: %s, token: %s, webhookSecret: %s}
store: {path: %s}
clusters: [{name: local, kubeconfig: %s}]
environments:
  - {name: preview, clusters: [local], refs: {mergeRequests: true}}
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    params: {ports: [{name: http, port: 8080}], resources: {cpuRequest: 10m, memoryRequest: 16Mi}}
    environments: {preview: {}}
previews: {domain: preview.test, namespacePrefix: %s, gcInterval: 1h}
`, gitlabURL, token, secret, filepath.Join(b.TempDir(), "shipbot.db"), kc.KubeconfigPath(), prefix)))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

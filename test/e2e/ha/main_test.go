// Package ha runs three real shipbot processes with store.backend
// kubernetes against the local control plane and breaks what they stand
// on: the leader is killed while 2,000 webhooks arrive, and the
// kube-apiserver stops for 20 s. Each test checks what an operator and
// GitLab would see: which replica leads, what intake answers, and that
// every acknowledged delivery ends as exactly one record.
//
// A stopped apiserver stops it for every test of the binary, so no test
// here runs in parallel, and the outage runs last (files in name order).
package ha

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/e2e/proc"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Shipbot: true}, &kc) }

const (
	secret   = "ha-secret"
	apiToken = "ha-api-token-0123456789abcdef0123456789"
)

// devConfig is shipbot.yaml for app web deployed to namespace ns on every
// pipeline of branch dev, with its store at path.
func devConfig(ns, path string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
log: {level: debug}
gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: %s}
api: {token: %s}
store: {path: %s}
clusters:
  - {name: local, kubeconfig: %s}
environments:
  - {name: dev, clusters: [local], namespace: %s, refs: {branches: ['^dev$']}}
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.ShortSHA}}"
    params:
      replicas: 1
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 10m, memoryRequest: 16Mi}
    environments:
      dev: {}
`, secret, apiToken, path, kc.KubeconfigPath(), ns)
}

// startReplicas starts n replicas of devConfig in a namespace of their own.
func startReplicas(t *testing.T, n int) *proc.Replicas {
	t.Helper()
	cluster.Require(t, kc)
	path := filepath.Join(t.TempDir(), "shipbot.db")
	text := devConfig(kc.NewNamespace(t), path)
	return proc.StartReplicas(t, proc.Binary(t, kc.Dir()), kc.Client(), text, path, "local", kc.NewNamespace(t), n)
}

// pipeline is the body and event UUID of dev's successful pipeline i.
func pipeline(i int) ([]byte, string, error) { return pipelineOn("dev", i) }

// pipelineOn is the body and event UUID of successful pipeline i of branch ref.
func pipelineOn(ref string, i int) ([]byte, string, error) {
	body, err := fixtures.PipelineSuccessBody(fixtures.Build{ProjectID: 9, Project: "shop/web", Ref: ref,
		SHA: fmt.Sprintf("%040x", i), PipelineID: int64(i), Username: fmt.Sprintf("dev-%d", i%7)})
	return body, fmt.Sprintf("pipeline-%d", i), err
}

// sender delivers webhooks the way GitLab does when a receiver fails: the
// same delivery (same body, same X-Gitlab-Event-UUID) again, here at the
// next replica, until one acknowledges it with a 200.
type sender struct {
	mu       sync.Mutex
	addrs    []string // the replicas, the killed one too
	next     atomic.Uint64
	acked    atomic.Int64
	failures atomic.Int64 // answers other than 200, and refused connections
	answers  sync.Map     // status code (0: no answer) → *atomic.Int64
}

// newSender sends to every replica of set.
func newSender(set *proc.Replicas) *sender {
	s := &sender{}
	for a := range set.Procs {
		s.addrs = append(s.addrs, a)
	}
	return s
}

func (s *sender) to(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = addrs
}

func (s *sender) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[s.next.Add(1)%uint64(len(s.addrs))]
}

// deliver sends dev's pipeline i until a replica acknowledges it, waiting
// pause between tries.
func (s *sender) deliver(ctx context.Context, i int, pause time.Duration) error {
	body, uuid, err := pipeline(i)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		code, _, err := fixtures.Deliver(actx, s.addr(), secret, "Pipeline Hook", body, "X-Gitlab-Event-UUID", uuid)
		cancel()
		n, _ := s.answers.LoadOrStore(code, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if err == nil && code == http.StatusOK {
			s.acked.Add(1)
			return nil
		}
		s.failures.Add(1)
		time.Sleep(pause)
	}
	return fmt.Errorf("pipeline %d not acknowledged: %w", i, ctx.Err())
}

// answered is how many tries got each status code (0: no answer).
func (s *sender) answered() map[int]int64 {
	m := map[int]int64{}
	s.answers.Range(func(k, v any) bool {
		m[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return m
}

// deploymentsByPipeline counts dev's deployment records by pipeline id,
// read page by page through the API, and how many are still active.
func deploymentsByPipeline(ctx context.Context, cl *api.Client) (map[int64]int, int, error) {
	got, active := map[int64]int{}, 0
	q := api.RecordQuery{Environment: "dev", Limit: api.MaxLimit}
	for {
		p, err := cl.Deployments(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		for _, d := range p.Items {
			got[d.PipelineID]++
			if d.Status.Active() {
				active++
			}
		}
		if p.Next == "" {
			return got, active, nil
		}
		q.Cursor = p.Next
	}
}

// exactlyOnce says which of pipelines 1..n have other than one record in
// got, and which records name a pipeline never sent.
func exactlyOnce(got map[int64]int, n int) []string {
	var wrong []string
	seen := 0
	for i := int64(1); i <= int64(n); i++ {
		if got[i] != 1 {
			wrong = append(wrong, fmt.Sprintf("pipeline %d: %d records", i, got[i]))
		}
		if _, ok := got[i]; ok {
			seen++
		}
	}
	if len(got) > seen {
		for id, c := range got {
			if id < 1 || id > int64(n) {
				wrong = append(wrong, fmt.Sprintf("pipeline %d, never sent: %d records", id, c))
			}
		}
	}
	return wrong
}

// holds checks cond every 100ms for d, failing at the first error.
func holds(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

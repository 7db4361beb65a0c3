package release

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	istio "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

// rig is one shipbot Main on a fresh bbolt file, releasing apps app00,
// app01, ... to one namespace, and the watches that time what it does there.
type rig struct {
	b    *testing.B
	o    rigOptions
	m    *serve.Main // the leader's, with ha
	addr string      // where shipbot listens
	ns   string
	vs   *events // VirtualServices in ns
	deps *events // Deployments in ns
}

// rigOptions say how shipbot runs and how its apps release.
type rigOptions struct {
	poll     time.Duration // Main's ReleasePoll; its default when 0
	replicas int
	pauses   bool   // pause after 10 % and after 50 %, for a person to continue
	user     string // the name shipbot's requests carry in the audit log; the admin's when empty
	// ha runs one serve.HA replica (store.backend kubernetes, default
	// lease), so that the journal's and the election's requests count too.
	ha bool
	// matchTraffic sizes the new version to each step's share of the
	// replicas (canaryScale: matchTraffic), as Argo Rollouts does; the
	// default is full size from the start.
	matchTraffic bool
}

func newRig(b *testing.B, o rigOptions) *rig {
	b.Helper()
	ic, err := istio.NewForConfig(kc.RESTConfig())
	if err != nil {
		b.Fatal(err)
	}
	// The benchmark before this one left its namespace to be deleted; its
	// teardown keeps the controllers busy for seconds, which a release
	// started meanwhile would pay (a first-weight time of 2–3 s, seen).
	quiet, cancelQuiet := context.WithTimeout(b.Context(), 3*time.Minute)
	defer cancelQuiet()
	if _, err := kc.WaitNamespacesGone(quiet); err != nil {
		b.Fatal(err)
	}
	r := &rig{b: b, o: o, ns: kc.NewNamespace(b)}
	for i := range apps {
		if err := cluster.TeamVirtualService(context.Background(), ic, r.ns, appName(i)); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	vw, err := ic.NetworkingV1().VirtualServices(r.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dw, err := kc.Client().AppsV1().Deployments(r.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r.vs, r.deps = follow(ctx, "VirtualService", vw), follow(ctx, "Deployment", dw)

	kubeconfig := kc.KubeconfigPath()
	if o.user != "" {
		if kubeconfig, err = kc.KubeconfigFor(o.user); err != nil {
			b.Fatal(err)
		}
	}
	text := r.config(filepath.Join(b.TempDir(), "shipbot.db"), kubeconfig)
	if o.ha {
		text = strings.Replace(text, "store: {path: ", "webhook: {maxBodyBytes: 786432, inbox: {cluster: local, namespace: "+kc.NewNamespace(b)+"}}\nstore: {backend: kubernetes, path: ", 1)
	}
	cfg, err := config.Parse("bench.yaml", []byte(text))
	if err != nil {
		b.Fatal(err)
	}
	if o.ha {
		h := &serve.HA{Config: cfg, Log: benchLogger()}
		if err := h.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		deadline := time.Now().Add(time.Minute)
		for r.m = h.Leader(); r.m == nil; r.m = h.Leader() {
			if time.Now().After(deadline) {
				b.Fatal("the replica did not lead within a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}
		r.addr = h.Addr()
		return r
	}
	r.m = &serve.Main{Config: cfg, Log: benchLogger(), ReleasePoll: o.poll}
	if err := r.m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.m.Close() })
	r.addr = r.m.Addr()
	return r
}

func appName(i int) string { return fmt.Sprintf("app%02d", i) }

// config is shipbot.yaml: one environment, prod, on the local control
// plane, and apps each from its own project, released by canary in steps
// of 10, 50 and 100 %, with a pause after 10 % and after 50 % if asked,
// and the new version sized to the traffic if asked.
func (r *rig) config(store, kubeconfig string) string {
	extra := "" // more of the release spec
	if r.o.pauses {
		extra = ", pauseAfter: [10, 50]"
	}
	if r.o.matchTraffic {
		extra += ", canaryScale: matchTraffic"
	}
	var list strings.Builder
	for i := range apps {
		fmt.Fprintf(&list, `  - name: %[1]s
    project: shop/%[1]s
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.Ref}}"
    params: {replicas: %[2]d, ports: [{name: http, port: 8080}], resources: {cpuRequest: 10m, memoryRequest: 16Mi}}
    release: {strategy: canary, steps: [10, 50, 100]%[3]s}
    environments: {prod: {}}
`, appName(i), r.o.replicas, extra)
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: %s}
api: {token: %s}
store: {path: %s}
clusters: [{name: local, kubeconfig: %s}]
environments:
  - {name: prod, clusters: [local], namespace: %s, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
%s`, secret, apiToken, store, kubeconfig, r.ns, list.String())
}

// benchLogger discards shipbot's log unless SHIPBOT_BENCH_LOG is set,
// which prints it at debug level with microsecond times, to see where a
// release's time goes.
func benchLogger() *slog.Logger {
	if os.Getenv("SHIPBOT_BENCH_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				a.Value = slog.StringValue(a.Value.Time().Format("15:04:05.000000"))
			}
			return a
		}}))
}

// tag posts the successful pipeline of tag v of app i and returns when
// shipbot's 200 arrived: the delivery is then durable in its inbox.
func (r *rig) tag(i int, v string, pipeline int64) time.Time {
	r.b.Helper()
	body := fixtures.PipelineSuccess(r.b, fixtures.Build{ProjectID: int64(100 + i), Project: "shop/" + appName(i), Ref: v, Tag: true,
		SHA: fmt.Sprintf("%040x", pipeline), PipelineID: pipeline, Username: "bench"})
	code := fixtures.PostWebhook(r.b, r.addr, secret, "Pipeline Hook", body)
	at := time.Now()
	if code != http.StatusOK {
		r.b.Fatalf("%s %s: webhook answered %d", appName(i), v, code)
	}
	return at
}

// control posts an action on a release through the HTTP API, as a person
// with a token would, and expects its 202.
func (r *rig) control(id, action string) {
	r.b.Helper()
	code, body := r.post(api.Prefix+"/releases/"+id+"/"+action, nil,
		"Authorization", "Bearer "+apiToken, api.HeaderActor, "bench")
	if code != http.StatusAccepted {
		r.b.Fatalf("%s release %s: API answered %d: %s", action, id, code, body)
	}
}

func (r *rig) post(path string, body []byte, headers ...string) (int, string) {
	r.b.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+path, bytes.NewReader(body))
	if err != nil {
		r.b.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// waitRelease polls the store (untimed) until the release of rev of app
// satisfies cond; it fails the benchmark if one ends otherwise.
func (r *rig) waitRelease(app, rev, what string, cond func(release.Release) bool) release.Release {
	r.b.Helper()
	deadline := time.Now().Add(within)
	for {
		all, err := r.m.Releases().List(context.Background(), release.Filter{App: app})
		if err != nil {
			r.b.Fatal(err)
		}
		for _, rel := range all {
			if rel.To.Name != rev {
				continue
			}
			if cond(rel) {
				return rel
			}
			if rel.Phase.Terminal() {
				r.b.Fatalf("release of %s %s ended %s, want %s: %s", app, rev, rel.Phase, what, release.Describe(rel, time.Now()))
			}
		}
		if time.Now().After(deadline) {
			r.b.Fatalf("release of %s %s: not %s within %s", app, rev, what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pausedAt(stage int) func(release.Release) bool {
	return func(r release.Release) bool { return r.Phase == release.Paused && r.Stage == stage }
}

func succeeded(r release.Release) bool { return r.Phase == release.Succeeded }

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}

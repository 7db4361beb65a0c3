// Package faults runs releases end to end while what shipbot talks to
// fails: GitLab answers 500 or 429 or hangs, Slack is down, the
// kube-apiserver stops for 20 s. Each test is written as its fault: the
// release waits or retries, its history says why, it ends once the fault
// clears, and no webhook acknowledged meanwhile is lost.
//
// A stopped apiserver stops it for every test of the binary, so no test
// here runs in parallel with TestAPIServerOutage.
package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	istio "istio.io/client-go/pkg/clientset/versioned"

	"github.com/shipbot/shipbot/cmd/shipbot/serve"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/cluster"
	"github.com/shipbot/shipbot/test/fixtures"
)

var kc *cluster.Cluster

func TestMain(m *testing.M) { cluster.Main(m, cluster.Options{Istio: true}, &kc) }

const (
	secret      = "faults-secret"
	gitlabToken = "faults-gitlab-token"
	projectID   = 9
)

// canary pauses at 50 % for a person, then goes to 100 %; a newer tag
// waits for the release in hand.
const canary = `strategy: canary
steps: [50, 100]
pauseAfter: [50]
onNewer: queue
scaleDownDelay: 1s`

// rig is one test's namespace, store file and shipbot.
type rig struct {
	t     *testing.T
	ns    string
	path  string
	istio istio.Interface
	m     *serve.Main
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cluster.Require(t, kc)
	ic, err := istio.NewForConfig(kc.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ns: kc.NewNamespace(t), path: filepath.Join(t.TempDir(), "shipbot.db"), istio: ic}
	if err := cluster.TeamVirtualService(t.Context(), ic, r.ns, "web"); err != nil {
		t.Fatal(err)
	}
	return r
}

// config is shipbot.yaml for app web of project shop/web released to
// prod1 on the local control plane, with extra sections appended.
func (r *rig) config(gitlabURL, extra string) string {
	gl := "gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: " + secret + "}"
	if gitlabURL != "" {
		gl = fmt.Sprintf("gitlab: {baseURL: %s, token: %s, webhookSecret: %s}", gitlabURL, gitlabToken, secret)
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
log: {level: debug}
%s
store: {path: %s}
clusters:
  - {name: prod1-cluster, kubeconfig: %s}
environments:
  - {name: prod1, clusters: [prod1-cluster], namespace: %s, refs: {tags: ['^v\d+\.\d+\.\d+$']}}
apps:
  - name: web
    project: shop/web
    registry: registry.example.com
    image: "{{.Registry}}/{{.Project}}:{{.Ref}}"
    params:
      replicas: 1
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 10m, memoryRequest: 16Mi}
    release:
%s
    environments:
      prod1: {}
%s`, gl, r.path, kc.KubeconfigPath(), r.ns, indent(canary, "      "), extra)
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// start runs shipbot's Main in the test process until the test ends.
func (r *rig) start(text string) {
	r.t.Helper()
	cfg, err := config.Parse("faults.yaml", []byte(text))
	if err != nil {
		r.t.Fatal(err)
	}
	r.m = &serve.Main{Config: cfg, Log: testLogger(), ReleasePoll: 100 * time.Millisecond}
	if err := r.m.Run(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if r.m.Store() != nil {
			r.m.Close()
		}
	})
}

func testLogger() *slog.Logger {
	if os.Getenv("SHIPBOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// sha is the commit of tag v: "v1.1.0" is built from "1100…".
func sha(v string) string {
	d := strings.ReplaceAll(strings.TrimPrefix(v, "v"), ".", "")
	return d + strings.Repeat("0", 40-len(d))
}

// rev is the revision name shipbot gives tag v.
func rev(v string) string { return strings.ReplaceAll(v, ".", "-") }

// tag posts the successful pipeline of tag v and checks intake
// acknowledged it.
func (r *rig) tag(v string, pipeline int64) {
	r.t.Helper()
	body := fixtures.PipelineSuccess(r.t, fixtures.Build{ProjectID: projectID, Project: "shop/web", Ref: v, Tag: true,
		SHA: sha(v), PipelineID: pipeline, Username: "rel-manager"})
	if code := fixtures.PostWebhook(r.t, r.m.Addr(), secret, "Pipeline Hook", body); code != http.StatusOK {
		r.t.Fatalf("tag %s: webhook answered %d", v, code)
	}
}

// release waits up to within for the release of tag v to satisfy cond.
func (r *rig) release(v, what string, within time.Duration, cond func(release.Release) bool) release.Release {
	r.t.Helper()
	var found release.Release
	fixtures.Eventually(r.t, within, fmt.Sprintf("release of %s: %s", v, what), func() error {
		all, err := r.m.Releases().List(context.Background(), release.Filter{Environment: "prod1"})
		if err != nil {
			return err
		}
		for _, x := range all {
			if x.To.Name == rev(v) {
				found = x
				if cond(x) {
					return nil
				}
				return fmt.Errorf("it is %s: %s\n%s", x.Phase, release.Describe(x, time.Now()), lines(x.History))
			}
		}
		return fmt.Errorf("no release yet")
	})
	return found
}

// pausedAtHalf is a release paused after its 50 % stage.
func pausedAtHalf(x release.Release) bool { return x.Phase == release.Paused && x.Stage == 1 }

func succeeded(x release.Release) bool { return x.Phase == release.Succeeded }

// continueRelease records a person's continue on release id.
func (r *rig) continueRelease(id string) {
	r.t.Helper()
	in := release.Intent{Kind: release.IntentContinue, Actor: "alice", Surface: release.SurfaceAPI}
	if _, err := r.m.Releases().Record(context.Background(), id, in); err != nil {
		r.t.Fatal(err)
	}
}

// waitWeights waits for the route weights to be want.
func (r *rig) waitWeights(want map[string]int32) {
	r.t.Helper()
	fixtures.Eventually(r.t, 30*time.Second, "weights", func() error {
		got, err := cluster.RouteWeights(context.Background(), r.istio, r.ns, "web")
		if err == nil && !maps.Equal(got, want) {
			err = fmt.Errorf("weights %v, want %v", got, want)
		}
		return err
	})
}

// history reads the history of release id now.
func (r *rig) history(id string) []release.Entry { return r.get(id).History }

// says reports whether an entry of kind in h has a message with every one
// of parts.
func says(h []release.Entry, kind release.EntryKind, parts ...string) bool {
	return slices.ContainsFunc(h, func(e release.Entry) bool {
		if e.Kind != kind {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(e.Message, p) {
				return false
			}
		}
		return true
	})
}

// waitSays waits for the history of release id to say parts in an entry
// of kind.
func (r *rig) waitSays(id string, within time.Duration, kind release.EntryKind, parts ...string) {
	r.t.Helper()
	fixtures.Eventually(r.t, within, fmt.Sprintf("history entry %s %q", kind, parts), func() error {
		if h := r.history(id); !says(h, kind, parts...) {
			return fmt.Errorf("history:\n%s", lines(h))
		}
		return nil
	})
}

// inboxEmpty waits until every acknowledged delivery has been processed.
func (r *rig) inboxEmpty() {
	r.t.Helper()
	fixtures.Eventually(r.t, 30*time.Second, "inbox drained", func() error {
		if n := r.m.Store().InboxDepth(); n != 0 {
			return fmt.Errorf("%d deliveries waiting", n)
		}
		return nil
	})
}

func lines(h []release.Entry) string {
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "  %s %-10s %-11s stage=%d %s: %s\n", e.At.Format("15:04:05.000"), e.Kind, e.Phase, e.Stage, e.Actor, e.Message)
	}
	return b.String()
}

// ridesOut releases v1.0.0, then v1.1.0 to 50 %, where it pauses. Then
// listener (a name in the release's Audience) starts failing with fault,
// a person continues, and tag v1.2.0 is pushed. The release goes on to
// 100 % meanwhile, its history saying that listener failed to take its
// events, with failure. Once the fault ends, the events reach the listener
// and none is given up; v1.2.0's webhook, acknowledged during the fault,
// starts its release after v1.1.0's.
func (r *rig) ridesOut(listener string, fault func() (end func()), failure string) {
	r.t.Helper()
	r.tag("v1.0.0", 100)
	r.release("v1.0.0", "succeeded", time.Minute, succeeded)
	r.tag("v1.1.0", 101)
	rel := r.release("v1.1.0", "paused at 50 %", time.Minute, pausedAtHalf)
	r.waitSays(rel.ID, 10*time.Second, release.EntryNotified, "Paused announced", listener)

	end := fault()
	r.t.Cleanup(end)
	r.continueRelease(rel.ID)
	r.tag("v1.2.0", 102)
	r.waitSays(rel.ID, 30*time.Second, release.EntryNotified, "failed: "+listener, failure, "attempt 1 of ")
	// v1.2.0 starts as soon as v1.1.0 ends: the weights are v1.2.0's by then.
	r.release("v1.1.0", "succeeded at 100 % during the fault", time.Minute, func(x release.Release) bool {
		return succeeded(x) && x.Percent == 100
	})
	if h := r.history(rel.ID); says(h, release.EntryNotified, "Succeeded announced to "+listener) {
		r.t.Fatalf("%s took the release's success during the fault:\n%s", listener, lines(h))
	}

	end()
	r.waitSays(rel.ID, time.Minute, release.EntryNotified, "Succeeded announced to "+listener)
	if h := r.history(rel.ID); says(h, release.EntryNotified, "gave up") {
		r.t.Errorf("an event was given up:\n%s", lines(h))
	}
	r.inboxEmpty()
	r.release("v1.2.0", "queued, then paused at 50 %", time.Minute, pausedAtHalf)
}

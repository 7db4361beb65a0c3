package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

// reloadConfig is a shipbot.yaml whose dev environment takes the branches
// matching branch, with the listen address given.
func reloadConfig(listen, branch string) string {
	return fmt.Sprintf(`listen: %s
gitlab: {baseURL: http://127.0.0.1:1, webhookSecret: s3cret}
clusters: [{name: local, kubeconfig: /nonexistent/kubeconfig}]
environments:
  - {name: dev, clusters: [local], namespace: shop, refs: {branches: ['%s']}}
apps:
  - name: web
    project: shop/web
    environments: {dev: {}}
`, listen, branch)
}

// syncBuffer is a log sink the watcher's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reloadRig is as much of Main as a reload touches, built from a config
// file in a directory of its own, without a cluster.
type reloadRig struct {
	m    *Main
	path string
	reg  *prometheus.Registry
	log  *syncBuffer
}

func newReloadRig(t *testing.T, text string) *reloadRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shipbot.yaml")
	writeFile(t, path, text)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &reloadRig{path: path, reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	r.m = &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(r.log, nil)), Now: time.Now,
		live: config.NewLive(cfg), store: st, clusters: map[string]*kube.Client{}}
	r.m.reloads = newReloads(r.reg, time.Now())
	return r
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// devMatches says whether the config in force sends branch to dev.
func (r *reloadRig) devMatches(branch string) bool {
	e, ok := r.m.live.Load().Environment("dev")
	return ok && e.MatchBranch(branch)
}

func (r *reloadRig) readyz(t *testing.T) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := r.m.readyz(echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/readyz", nil), rec)); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body, err)
	}
	return rec.Code, body
}

func (r *reloadRig) reloads(result string) float64 {
	return testutil.ToFloat64(r.m.reloads.total.WithLabelValues(result))
}

// A broken file leaves the config in force, and says so in the log, the
// metrics and /readyz, which stays ready; fixing the file applies it.
func TestReloadKeepsConfigOnBrokenFile(t *testing.T) {
	r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
	before := r.m.live.Load()

	writeFile(t, r.path, strings.Replace(reloadConfig("127.0.0.1:0", "^main$"), "namespace: shop", "namespace: Not_A_Label", 1))
	if err := r.m.Reload(); err == nil {
		t.Fatal("reload of an invalid file succeeded")
	}
	if r.m.live.Load() != before || !r.devMatches("dev") || r.devMatches("main") {
		t.Error("a refused reload changed the config in force")
	}
	if !strings.Contains(r.log.String(), "config reload failed") || !strings.Contains(r.log.String(), "namespace") {
		t.Errorf("log does not say why the reload failed:\n%s", r.log)
	}
	if got := r.reloads("failure"); got != 1 {
		t.Errorf("shipbot_config_reloads_total{result=failure} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.reloads.successful); got != 0 {
		t.Errorf("shipbot_config_last_reload_successful = %v, want 0", got)
	}
	code, body := r.readyz(t)
	if code != http.StatusOK {
		t.Errorf("readyz %d %v after a refused reload, want 200: the old config still serves", code, body)
	}
	if !strings.Contains(body["config"], "refused") || strings.Contains(body["config"], "Not_A_Label") {
		t.Errorf(`readyz "config" = %q, want the refusal without the file's values`, body["config"])
	}

	writeFile(t, r.path, reloadConfig("127.0.0.1:0", "^main$"))
	if err := r.m.Reload(); err != nil {
		t.Fatalf("reload of a good file: %v", err)
	}
	if !r.devMatches("main") || r.devMatches("dev") {
		t.Error("a good reload did not put the new branch rule in force")
	}
	if got := r.reloads("success"); got != 1 {
		t.Errorf("shipbot_config_reloads_total{result=success} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.reloads.successful); got != 1 {
		t.Errorf("shipbot_config_last_reload_successful = %v, want 1", got)
	}
	if _, body := r.readyz(t); body["config"] != "ok" {
		t.Errorf(`readyz "config" = %q after a good reload, want ok`, body["config"])
	}
}

// A file that changes a restart-only key is refused whole, naming the key,
// even when it changes reloadable keys too.
func TestReloadRefusesRestartOnlyChange(t *testing.T) {
	r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
	writeFile(t, r.path, reloadConfig("127.0.0.1:9999", "^main$"))
	if err := r.m.Reload(); err == nil {
		t.Fatal("reload that changes listen succeeded")
	}
	if r.devMatches("main") {
		t.Error("a reload refused for listen applied its branch rule")
	}
	if _, body := r.readyz(t); !strings.Contains(body["config"], "listen") {
		t.Errorf(`readyz "config" = %q, want it to name listen`, body["config"])
	}
	if !strings.Contains(r.log.String(), "listen") {
		t.Errorf("log does not name listen:\n%s", r.log)
	}
}

// Every key is either read through live or in restartOnly: a change to any
// key start-up reads once must be named. The cases are one per kind of key.
func TestRestartKeys(t *testing.T) {
	base := reloadConfig("127.0.0.1:0", "^dev$")
	for _, c := range []struct{ change, want string }{
		{"clusters: [{name: local, kubeconfig: /other}]", "clusters"},
		{"store: {path: /tmp/other.db}\nclusters: [{name: local, kubeconfig: /nonexistent/kubeconfig}]", "store"},
		{"projects: [{path: shop/web, id: 7}]\nclusters: [{name: local, kubeconfig: /nonexistent/kubeconfig}]", "projects[].id, projects[].webhookSecret, apps[].projectID"},
	} {
		next := strings.Replace(base, "clusters: [{name: local, kubeconfig: /nonexistent/kubeconfig}]", c.change, 1)
		a, err := config.Parse("a.yaml", []byte(base))
		if err != nil {
			t.Fatal(err)
		}
		b, err := config.Parse("b.yaml", []byte(next))
		if err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		if got := restartKeys(a, b); len(got) != 1 || got[0] != c.want {
			t.Errorf("restart keys %q, want [%s]", got, c.want)
		}
	}
	for _, c := range []struct{ what, a, b string }{
		{"a branch rule change", base, strings.Replace(base, "^dev$", "^main$", 1)},
		// Pins are a set: the order of apps does not change them.
		{"apps with pinned ids reordered", base + pinnedApps("api", "web"), base + pinnedApps("web", "api")},
	} {
		a, err := config.Parse("a.yaml", []byte(c.a))
		if err != nil {
			t.Fatal(err)
		}
		b, err := config.Parse("b.yaml", []byte(c.b))
		if err != nil {
			t.Fatal(err)
		}
		if got := restartKeys(a, b); len(got) != 0 {
			t.Errorf("%s needs a restart of %q, want none", c.what, got)
		}
	}
}

// pinnedApps are more apps, each of its own project with a pinned id.
func pinnedApps(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		id := map[string]int{"api": 11, "web": 12}[n]
		fmt.Fprintf(&b, "  - {name: %s-pinned, project: shop/%s-pinned, projectID: %d, environments: {dev: {}}}\n", n, n, id)
	}
	return b.String()
}

// startWatcher runs the rig's watcher until the test ends.
func (r *reloadRig) startWatcher(t *testing.T) {
	t.Helper()
	w, err := r.m.newWatcher()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.m.runWatcher(ctx, w) }()
	t.Cleanup(func() { cancel(); <-done })
}

// SIGHUP reloads the file whatever it holds, even bytes already in force.
func TestSIGHUPReloads(t *testing.T) {
	r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
	r.startWatcher(t)
	time.Sleep(2 * reloadDebounce)
	if n := r.reloads("success"); n != 0 {
		t.Fatalf("%v reloads of an unchanged file before SIGHUP, want 0", n)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fixtures.Eventually(t, 5*time.Second, "SIGHUP reloads the config", func() error {
		if n := r.reloads("success"); n != 1 {
			return fmt.Errorf("%v successful reloads", n)
		}
		return nil
	})
}

// A file that changed after the config in force was read from it, and
// before watching began (an HA replica comes to lead hours after it
// started), is put in force when watching begins, not at its next change.
func TestAFileChangedBeforeWatchingIsPutInForce(t *testing.T) {
	r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
	writeFile(t, r.path, reloadConfig("127.0.0.1:0", "^main$"))
	r.startWatcher(t)
	if !r.devMatches("main") || r.reloads("success") != 1 {
		t.Fatalf("once watching: dev takes main %v, %v successful reloads; want the file as it is now in force", r.devMatches("main"), r.reloads("success"))
	}
}

func TestFileChangeReloads(t *testing.T) {
	t.Run("write", func(t *testing.T) {
		r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
		r.startWatcher(t)
		writeFile(t, r.path, reloadConfig("127.0.0.1:0", "^main$"))
		r.waitBranch(t, "main")
		// A broken write is refused and counted; the config stays.
		writeFile(t, r.path, "environments: [")
		fixtures.Eventually(t, 5*time.Second, "the broken write is refused", func() error {
			if r.reloads("failure") != 1 {
				return fmt.Errorf("%v failures", r.reloads("failure"))
			}
			return nil
		})
		if !r.devMatches("main") {
			t.Error("a broken write changed the config in force")
		}
	})
	t.Run("configmap", func(t *testing.T) {
		// A ConfigMap volume: shipbot.yaml → ..data/shipbot.yaml, and an
		// update swaps the ..data symlink to a new timestamped directory.
		dir := t.TempDir()
		version := func(name, text string) {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, name, "shipbot.yaml"), text)
			if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}
		version("..2026_01_01_v1", reloadConfig("127.0.0.1:0", "^dev$"))
		if err := os.Symlink("..data/shipbot.yaml", filepath.Join(dir, "shipbot.yaml")); err != nil {
			t.Fatal(err)
		}
		r := newReloadRig(t, reloadConfig("127.0.0.1:0", "^dev$"))
		cfg, err := config.Load(filepath.Join(dir, "shipbot.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		r.m.Config, r.path = cfg, filepath.Join(dir, "shipbot.yaml")
		r.m.live.Store(cfg)
		r.startWatcher(t)
		version("..2026_01_01_v2", reloadConfig("127.0.0.1:0", "^main$"))
		r.waitBranch(t, "main")
	})
}

func (r *reloadRig) waitBranch(t *testing.T, branch string) {
	t.Helper()
	fixtures.Eventually(t, 5*time.Second, "the file's change is reloaded", func() error {
		if !r.devMatches(branch) {
			return fmt.Errorf("dev does not take %s; log:\n%s", branch, r.log)
		}
		return nil
	})
}

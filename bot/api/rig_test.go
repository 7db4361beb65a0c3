package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
)

const (
	token      = "s3cret-api-token"
	dbPassword = "hunter2-db" // in a release's params; the API must never serve it
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// rig is the real API on a real Echo, in front of a real engine on a temp
// bbolt store. Create, Get, List and Record never touch a cluster, so the
// engine has none.
type rig struct {
	srv    *httptest.Server
	store  *store.Store
	engine *release.Stepper
	clock  *fakeclock.Clock // the engine's and the API's, moved by hand
}

func newRig(t *testing.T, tok string) *rig {
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
	api.New(api.Options{Releases: eng, Records: st, Token: tok, Log: log, Now: clk.Now}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &rig{srv: srv, store: st, engine: eng, clock: clk}
}

// canary is a valid three-stage canary release of app to env.
func canary(app, env string) release.Release {
	return release.Release{
		App: app, Project: "shop/" + app, Environment: env, Cluster: "c1", Namespace: app, Strategy: release.Canary,
		From: release.Revision{Name: "v1", Image: app + ":1"}, To: release.Revision{Name: "v2", Image: app + ":2"},
		Stages:      []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50}, {Target: 100}},
		Params:      templates.Params{Ports: []templates.Port{{Port: 80}}, Env: []templates.EnvVar{{Name: "DB_PASSWORD", Value: dbPassword}}},
		TriggeredBy: "carol",
	}
}

// create stores r and moves the clock on a minute, so releases have
// distinct creation times.
func (r *rig) create(t *testing.T, rel release.Release) release.Release {
	t.Helper()
	out, err := r.engine.Create(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	return out
}

// setState writes a release into a state the engine reaches by stepping,
// e.g. Paused at stage 2 after a manual stage, by editing the stored
// document: stepping needs a cluster, and these tests are about the API.
func (r *rig) setState(t *testing.T, id string, phase release.Phase, stage, percent int) {
	t.Helper()
	err := r.store.UpdateRelease(id, func(stored []byte) ([]byte, error) {
		var doc map[string]any
		if err := json.Unmarshal(stored, &doc); err != nil {
			return nil, err
		}
		doc["phase"], doc["stage"], doc["percent"] = phase, stage, percent
		return json.Marshal(doc)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// do sends a request with the right token unless headers set another
// Authorization; headers are name, value pairs.
func (r *rig) do(t *testing.T, method, path, body string, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// act posts a control as alice.
func (r *rig) act(t *testing.T, id, action, body string, headers ...string) (int, []byte) {
	t.Helper()
	return r.do(t, http.MethodPost, "/api/v1/releases/"+id+"/"+action, body, append([]string{api.HeaderActor, "alice"}, headers...)...)
}

func (r *rig) get(t *testing.T, id string) api.Release {
	t.Helper()
	code, b := r.do(t, http.MethodGet, "/api/v1/releases/"+id, "")
	if code != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, code, b)
	}
	return decode[api.Release](t, b)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func errorOf(t *testing.T, b []byte) string {
	t.Helper()
	return decode[api.Error](t, b).Error
}

// getOK reads path, which must answer 200, as a T.
func getOK[T any](t *testing.T, r *rig, path string) T {
	t.Helper()
	code, b := r.do(t, http.MethodGet, path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return decode[T](t, b)
}

package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

func TestAuthentication(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod"))
	tests := []struct {
		name, auth string
		want       int
		errHas     string
	}{
		{"no header", "", http.StatusUnauthorized, "missing bearer token"},
		{"wrong token", "Bearer guess", http.StatusUnauthorized, "wrong API token"},
		{"token prefix", "Bearer " + token[:5], http.StatusUnauthorized, "wrong API token"},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized, "missing bearer token"},
		{"bearer without token", "Bearer ", http.StatusUnauthorized, "missing bearer token"},
		{"right token", "Bearer " + token, http.StatusOK, ""},
		{"scheme in any case", "bearer " + token, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/releases", "/api/v1/releases/" + rel.ID} {
				code, b := r.do(t, http.MethodGet, path, "", "Authorization", tt.auth)
				if code != tt.want {
					t.Fatalf("GET %s: %d %s, want %d", path, code, b, tt.want)
				}
				if tt.errHas != "" && !strings.Contains(errorOf(t, b), tt.errHas) {
					t.Errorf("GET %s: error %s, want it to say %q", path, b, tt.errHas)
				}
				if strings.Contains(string(b), "guess") {
					t.Errorf("reply echoes the token sent: %s", b)
				}
			}
		})
	}
	// A refused control records nothing.
	code, _ := r.act(t, rel.ID, "abort", "", "Authorization", "Bearer guess")
	if code != http.StatusUnauthorized {
		t.Errorf("abort with a wrong token: %d", code)
	}
	if got := r.get(t, rel.ID); len(got.Intents) != 0 {
		t.Errorf("intents after refused control: %+v", got.Intents)
	}
}

func TestUnknownRoutesNeedTheTokenToo(t *testing.T) {
	r := newRig(t, token)
	if code, b := r.do(t, http.MethodGet, "/api/v1/clusters", "", "Authorization", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown route without token: %d %s, want 401", code, b)
	}
	for _, path := range []string{"/api/v1/clusters", "/api/v1", "/api/v1/releases/r1/deploy", "/api/v1/deployments/d1"} {
		code, b := r.do(t, http.MethodGet, path, "")
		if code != http.StatusNotFound || errorOf(t, b) != "no route GET "+path {
			t.Errorf("GET %s: %d %s, want 404 naming the route", path, code, b)
		}
	}
}

func TestWrongMethodSaysWhichToUse(t *testing.T) {
	r := newRig(t, token)
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodPost, "/api/v1/releases", "GET"},
		{http.MethodDelete, "/api/v1/releases/r1", "GET"},
		{http.MethodGet, "/api/v1/releases/r1/pause", "POST"},
		{http.MethodPost, "/api/v1/deployments", "GET"},
		{http.MethodDelete, "/api/v1/previews", "GET"},
	} {
		code, b := r.do(t, tt.method, tt.path, "")
		if code != http.StatusMethodNotAllowed || errorOf(t, b) != tt.path+" takes "+tt.allow+", not "+tt.method {
			t.Errorf("%s %s: %d %s, want 405 saying %s", tt.method, tt.path, code, b, tt.allow)
		}
	}
}

func TestDisabledWithoutToken(t *testing.T) {
	r := newRig(t, "")
	rel := r.create(t, canary("web", "prod"))
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/releases"},
		{http.MethodGet, "/api/v1/releases/" + rel.ID},
		{http.MethodPost, "/api/v1/releases/" + rel.ID + "/abort"},
		{http.MethodGet, "/api/v1/anything"},
	} {
		// Even an empty bearer token, which would match an empty
		// configured one, is refused.
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			code, b := r.do(t, req.method, req.path, "", "Authorization", auth, api.HeaderActor, "alice")
			if code != http.StatusServiceUnavailable || errorOf(t, b) != api.Disabled {
				t.Errorf("%s %s with %q: %d %s, want 503 %q", req.method, req.path, auth, code, b, api.Disabled)
			}
		}
	}
	if got, _ := r.engine.Get(t.Context(), rel.ID); len(got.Intents) != 0 {
		t.Errorf("disabled API recorded %+v", got.Intents)
	}
}

func TestGetShowsHistoryAndSummary(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod"))
	if code, b := r.act(t, rel.ID, "pause", `{"comment":"checking dashboards"}`); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, b)
	}
	code, raw := r.do(t, http.MethodGet, "/api/v1/releases/"+rel.ID, "")
	if code != http.StatusOK || strings.Contains(string(raw), dbPassword) || strings.Contains(string(raw), `"params"`) {
		t.Errorf("GET: %d, want 200 without the rendering params: %s", code, raw)
	}
	got := r.get(t, rel.ID)
	if got.ID != rel.ID || got.App != "web" || got.Phase != release.Pending || len(got.Stages) != 3 {
		t.Errorf("got %+v", got.Release)
	}
	if got.Summary != "pending · canary v1 → v2 in 3 stages (10 → 50 → 100 %)" {
		t.Errorf("summary %q", got.Summary)
	}
	if len(got.History) != 2 || !strings.HasPrefix(got.History[0].Message, "created:") {
		t.Fatalf("history %+v", got.History)
	}
	last := got.History[1]
	if last.Actor != "alice" || last.Surface != release.SurfaceAPI || last.Kind != release.EntryIntent || last.Message != "pause requested: checking dashboards" {
		t.Errorf("last history entry %+v", last)
	}
}

func TestGetUnknownRelease(t *testing.T) {
	r := newRig(t, token)
	code, b := r.do(t, http.MethodGet, "/api/v1/releases/r000000000999", "")
	if code != http.StatusNotFound || errorOf(t, b) != "release r000000000999 not found" {
		t.Errorf("%d %s, want 404 release r000000000999 not found", code, b)
	}
	code, b = r.act(t, "r000000000999", "abort", "")
	if code != http.StatusNotFound {
		t.Errorf("abort unknown: %d %s, want 404", code, b)
	}
}

// failingReleases fails every call the way a broken store would.
type failingReleases struct{ err error }

func (f failingReleases) List(context.Context, release.Filter) ([]release.Release, error) {
	return nil, f.err
}
func (f failingReleases) Get(context.Context, string) (release.Release, error) {
	return release.Release{}, f.err
}
func (f failingReleases) Record(context.Context, string, release.Intent) (release.Release, error) {
	return release.Release{}, f.err
}

func TestInternalErrorsStayInTheLog(t *testing.T) {
	var logged bytes.Buffer
	broken := failingReleases{errors.New("open /var/lib/shipbot/shipbot.db: input/output error")}
	e := echo.New()
	api.New(api.Options{Releases: broken, Token: token, Log: slog.New(slog.NewTextHandler(&logged, nil))}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	r := &rig{srv: srv}
	code, b := r.do(t, http.MethodGet, "/api/v1/releases/r000000000001", "")
	if code != http.StatusInternalServerError || errorOf(t, b) != errkind.InternalText {
		t.Errorf("%d %s, want 500 %q", code, b, errkind.InternalText)
	}
	if !strings.Contains(logged.String(), "input/output error") {
		t.Errorf("the log lacks the cause:\n%s", logged.String())
	}
}

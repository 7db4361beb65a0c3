package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// People on shop/web and their own GitLab access tokens.
const (
	botToken      = "glpat-shipbot"
	maintainerPAT = "glpat-mia"
	reporterPAT   = "glpat-rex"
	blockedPAT    = "glpat-bo"
)

// peopleRig is the API with people's tokens on: a fake GitLab knows the
// tokens and roles, and a person's action goes through the real ops and
// authz, as a chat click does.
func peopleRig(t *testing.T) (*rig, *fakegitlab.Server) {
	t.Helper()
	return peopleRigWith(t, nil)
}

// peopleRigWith is peopleRig, with more lets a test add to the API's options.
func peopleRigWith(t *testing.T, more func(*api.Options, *gitlab.Client, *ops.Service)) (*rig, *fakegitlab.Server) {
	t.Helper()
	r := newRig(t, token)
	gl := fakegitlab.New(t, botToken)
	gl.SetProjectPath(42, "shop/web")
	for _, u := range []struct {
		id    int64
		name  string
		tok   string
		state string
		level int
	}{{11, "mia", maintainerPAT, "", int(gitlab.Maintainer)}, {12, "rex", reporterPAT, "", int(gitlab.Reporter)}, {13, "bo", blockedPAT, "blocked", int(gitlab.Maintainer)}} {
		gl.SetUser(fakegitlab.User{ID: u.id, Username: u.name, State: u.state})
		gl.SetPersonalToken(u.tok, u.id)
		gl.SetMember(42, u.id, u.level)
	}
	c, err := gitlab.New(gl.URL(), botToken, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	z := authz.New(authz.Options{GitLab: c, Now: r.clock.Now, Log: log})
	e := echo.New()
	door := &ops.Service{Releases: r.engine, Authz: z, Log: log}
	opts := api.Options{Releases: r.engine, Records: r.store, Token: token, Log: log, Now: r.clock.Now, People: c, Ops: door}
	if more != nil {
		more(&opts, c, door)
	}
	api.New(opts).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	r.srv = srv
	return r, gl
}

func TestPersonalTokensActAsTheirOwner(t *testing.T) {
	r, gl := peopleRig(t)
	rel := r.create(t, canary("web", "prod"))
	r.setState(t, rel.ID, release.Paused, 0, 10)
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok, api.HeaderActor, ""} }

	// A reporter's own token: their role is checked, and it is too low.
	if code, b := r.act(t, rel.ID, "continue", "", as(reporterPAT)...); code != http.StatusForbidden || !strings.Contains(string(b), "rex") {
		t.Errorf("reporter's token: %d %s, want 403 naming rex", code, b)
	}
	// A blocked account's token acts as no one.
	if code, b := r.act(t, rel.ID, "continue", "", as(blockedPAT)...); code != http.StatusForbidden || !strings.Contains(string(b), "blocked") {
		t.Errorf("blocked account's token: %d %s, want 403 saying it is blocked", code, b)
	}
	// A token GitLab does not know.
	if code, b := r.act(t, rel.ID, "continue", "", as("glpat-guess")...); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d %s, want 401", code, b)
	}
	if got := r.get(t, rel.ID); len(got.Intents) != 0 {
		t.Fatalf("refused requests recorded %+v", got.Intents)
	}

	// A maintainer's own token acts as her, whoever the header names (the
	// CLI sends $USER), and GitLab is asked who holds it once for both
	// requests.
	before := gl.Calls()
	if code, b := r.act(t, rel.ID, "continue", "", "Authorization", "Bearer "+maintainerPAT, api.HeaderActor, "rex"); code != http.StatusAccepted {
		t.Fatalf("maintainer's token: %d %s, want 202", code, b)
	}
	if code, b := r.do(t, http.MethodGet, "/api/v1/releases/"+rel.ID, "", "Authorization", "Bearer "+maintainerPAT); code != http.StatusOK {
		t.Fatalf("read with a maintainer's token: %d %s", code, b)
	}
	got := r.get(t, rel.ID)
	if len(got.Intents) != 1 || got.Intents[0].Actor != "mia" || got.Intents[0].Surface != release.SurfaceAPI {
		t.Errorf("intents %+v, want mia's continue via api", got.Intents)
	}
	userCalls := 0
	for _, c := range gl.CallLog()[before:] {
		if c == "GET /api/v4/user" {
			userCalls++
		}
	}
	if userCalls != 1 {
		t.Errorf("GitLab was asked who holds the token %d times for two requests, want once", userCalls)
	}
}

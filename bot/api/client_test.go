package api_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

func TestClientRoundTrip(t *testing.T) {
	r := newRig(t, token)
	web := r.create(t, canary("web", "prod"))
	r.create(t, canary("api", "prod"))
	r.setState(t, web.ID, release.Paused, 1, 10)
	c := &api.Client{Server: r.srv.URL + "/", Token: token, Actor: "alice", Surface: release.SurfaceCLI}

	page, err := c.List(t.Context(), api.Query{Phases: []string{"paused"}, Active: true, Since: t0, Limit: 5})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != web.ID {
		t.Fatalf("list: %+v, %v", page, err)
	}
	fifty := 50
	got, err := c.Control(t.Context(), web.ID, api.ActionPromote, api.ControlRequest{Percent: &fifty, Comment: "looks good"})
	if err != nil || len(got.Intents) != 1 || got.Intents[0].Surface != release.SurfaceCLI || got.Intents[0].Percent != 50 {
		t.Fatalf("promote: %+v, %v", got.Intents, err)
	}
	got, err = c.Get(t.Context(), web.ID)
	if err != nil || got.History[len(got.History)-1].Message != "promote to 50 % requested: looks good" {
		t.Errorf("get: %+v, %v", got.History, err)
	}

	_, err = c.Control(t.Context(), web.ID, api.ActionPause, api.ControlRequest{})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !errors.Is(err, release.ErrConflict) ||
		err.Error() != "409 Conflict: it is already paused" {
		t.Errorf("conflict: %v", err)
	}
	if _, err := c.Get(t.Context(), "r000000000999"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("not found: %v", err)
	}
	anon := *c
	anon.Actor = ""
	if _, err := anon.Control(t.Context(), web.ID, api.ActionAbort, api.ControlRequest{}); err == nil || err.Error() != "400 Bad Request: X-Shipbot-Actor: missing: say who is acting" {
		t.Errorf("no actor: %v", err)
	}
}

func TestClientReportsAnswersFromElsewhere(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream connect error", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c := &api.Client{Server: proxy.URL, Token: token}
	if _, err := c.List(t.Context(), api.Query{}); err == nil || err.Error() != "502 Bad Gateway: upstream connect error" {
		t.Errorf("proxy error: %v", err)
	}
	c.Server = "localhost:8080"
	if _, err := c.List(t.Context(), api.Query{}); err == nil || err.Error() != `server "localhost:8080": want a URL like http://127.0.0.1:8080` {
		t.Errorf("bad server: %v", err)
	}
}

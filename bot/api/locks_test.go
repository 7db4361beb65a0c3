package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

func TestLocksThroughTheAPI(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod2"))
	r.setState(t, rel.ID, release.Paused, 1, 10)

	code, b := r.do(t, http.MethodPost, "/api/v1/environments/prod2/lock", `{"reason":"db migration"}`, api.HeaderActor, "mia")
	if code != http.StatusOK {
		t.Fatalf("lock: %d %s", code, b)
	}
	if l := decode[release.Lock](t, b); l.Holder != "mia" || l.Reason != "db migration" || l.Surface != release.SurfaceAPI {
		t.Errorf("lock = %+v", l)
	}
	code, b = r.do(t, http.MethodGet, "/api/v1/locks", "")
	if ls := decode[map[string][]release.Lock](t, b)["locks"]; code != http.StatusOK || len(ls) != 1 || ls[0].Environment != "prod2" {
		t.Errorf("locks: %d %s", code, b)
	}

	// Another actor's continue is refused with the holder and the reason.
	code, b = r.act(t, rel.ID, api.ActionContinue, "")
	if code != http.StatusConflict || !strings.Contains(string(b), `prod2 is locked by mia: \"db migration\"; only mia can act`) {
		t.Errorf("continue under lock: %d %s", code, b)
	}
	// Pausing stays open to everyone.
	if code, b = r.act(t, rel.ID, api.ActionPause, ""); code != http.StatusConflict || !strings.Contains(string(b), "already paused") {
		t.Errorf("pause under lock: %d %s, want the release's own answer", code, b)
	}
	code, b = r.do(t, http.MethodPost, "/api/v1/environments/prod2/unlock", "", api.HeaderActor, "alice")
	if code != http.StatusConflict || !strings.Contains(string(b), "only mia, or someone allowed to break locks") {
		t.Errorf("unlock by another without force: %d %s", code, b)
	}
	code, b = r.do(t, http.MethodPost, "/api/v1/environments/prod2/unlock", `{"force":true}`, api.HeaderActor, "alice", api.HeaderSurface, "cli")
	if code != http.StatusOK {
		t.Fatalf("forced unlock: %d %s", code, b)
	}
	if code, b = r.act(t, rel.ID, api.ActionContinue, ""); code != http.StatusAccepted {
		t.Errorf("continue after unlock: %d %s", code, b)
	}
	hist := r.get(t, rel.ID).History
	if !strings.Contains(hist[len(hist)-2].Message, "lock of mia broken by alice") || hist[len(hist)-2].Surface != release.SurfaceCLI {
		t.Errorf("history does not keep the broken lock: %+v", hist[len(hist)-2])
	}
}

func TestLockRequestErrors(t *testing.T) {
	r := newRig(t, token)
	for _, tc := range []struct{ path, body, want string }{
		{"/api/v1/environments/Prod_2/lock", "", `environment: \"Prod_2\"`},
		{"/api/v1/environments/prod2/lock", `{"reasons":"x"}`, `body: unknown field \"reasons\"`},
		{"/api/v1/environments/prod2/lock", `{"reason":"` + strings.Repeat("x", 1001) + `"}`, "reason: longer than 1000 bytes"},
	} {
		code, b := r.do(t, http.MethodPost, tc.path, tc.body, api.HeaderActor, "mia")
		if code != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("POST %s %s: %d %s, want 400 with %q", tc.path, tc.body, code, b, tc.want)
		}
	}
	if code, b := r.do(t, http.MethodPost, "/api/v1/environments/prod2/lock", ""); code != http.StatusUnprocessableEntity || !strings.Contains(string(b), api.HeaderActor) {
		t.Errorf("lock without an actor: %d %s", code, b)
	}
	if code, _ := r.do(t, http.MethodGet, "/api/v1/environments/prod2/lock", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET lock: %d, want 405", code)
	}
}

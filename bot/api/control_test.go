package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

// TestControlsRecordIntents posts each control to a release waiting at
// stage 2/3, as the engine leaves one after a manual stage, and checks that
// the intent is recorded with its actor and surface and shows in history.
func TestControlsRecordIntents(t *testing.T) {
	tests := []struct {
		action, body string
		headers      []string
		want         release.Intent
		message      string
	}{
		{"continue", "", nil, release.Intent{Kind: release.IntentContinue, Actor: "alice", Surface: release.SurfaceAPI}, "continue requested"},
		{"promote", `{"percent": 50}`, nil, release.Intent{Kind: release.IntentPromote, Percent: 50, Actor: "alice", Surface: release.SurfaceAPI}, "promote to 50 % requested"},
		{"promote", `{"full": true, "comment": "metrics are fine"}`, []string{api.HeaderSurface, "cli"},
			release.Intent{Kind: release.IntentPromoteFull, Actor: "alice", Surface: release.SurfaceCLI, Comment: "metrics are fine"}, "promote-full requested: metrics are fine"},
		{"rollback", `{"comment":"5xx up"}`, []string{api.HeaderActor, "bob"}, release.Intent{Kind: release.IntentRollback, Actor: "bob", Surface: release.SurfaceAPI, Comment: "5xx up"}, "rollback requested: 5xx up"},
		{"abort", "{}", []string{api.HeaderSurface, "api"}, release.Intent{Kind: release.IntentAbort, Actor: "alice", Surface: release.SurfaceAPI}, "abort requested"},
	}
	for _, tt := range tests {
		t.Run(tt.action+tt.body, func(t *testing.T) {
			r := newRig(t, token)
			rel := r.create(t, canary("web", "prod"))
			r.setState(t, rel.ID, release.Paused, 1, 10)
			code, b := r.act(t, rel.ID, tt.action, tt.body, tt.headers...)
			if code != http.StatusAccepted {
				t.Fatalf("%d %s, want 202", code, b)
			}
			answered := decode[api.Release](t, b)
			if answered.Summary == "" || len(answered.Intents) != 1 {
				t.Errorf("answer %+v", answered)
			}
			got := r.get(t, rel.ID)
			if len(got.Intents) != 1 {
				t.Fatalf("intents %+v", got.Intents)
			}
			in := got.Intents[0]
			in.Seq, in.At = 0, in.At.UTC()
			want := tt.want
			want.At = r.clock.Now()
			if in != want {
				t.Errorf("intent %+v, want %+v", in, want)
			}
			last := got.History[len(got.History)-1]
			if last.Actor != want.Actor || last.Surface != want.Surface || last.Message != tt.message || last.Phase != release.Paused {
				t.Errorf("history entry %+v, want %s by %s via %s", last, tt.message, want.Actor, want.Surface)
			}
		})
	}
}

func TestPauseRecordsOnAPendingRelease(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod"))
	code, b := r.act(t, rel.ID, "pause", "", api.HeaderSurface, "cli")
	if code != http.StatusAccepted {
		t.Fatalf("%d %s", code, b)
	}
	got := r.get(t, rel.ID)
	if len(got.Intents) != 1 || got.Intents[0].Kind != release.IntentPause || got.Intents[0].Surface != release.SurfaceCLI {
		t.Errorf("intents %+v", got.Intents)
	}
}

func TestConflictsSayWhy(t *testing.T) {
	r := newRig(t, token)
	paused := r.create(t, canary("web", "prod"))
	r.setState(t, paused.ID, release.Paused, 1, 10)
	pending := r.create(t, canary("api", "prod"))
	first := canary("new", "prod")
	first.From = release.Revision{}
	first = r.create(t, first)
	ended := r.create(t, canary("old", "prod"))
	r.setState(t, ended.ID, release.Aborted, 0, 0)
	tests := []struct {
		id, action, body, errHas string
	}{
		{paused.ID, "pause", "", "it is already paused"},
		{paused.ID, "promote", `{"percent": 10}`, "it is already past 10 %"},
		{pending.ID, "continue", "", "it is pending, not paused"},
		{first.ID, "rollback", "", "no previous revision to roll back to; abort it instead"},
		{ended.ID, "abort", "", "it has already ended (Aborted)"},
	}
	for _, tt := range tests {
		code, b := r.act(t, tt.id, tt.action, tt.body)
		if code != http.StatusConflict || !strings.Contains(errorOf(t, b), tt.errHas) {
			t.Errorf("%s %s: %d %s, want 409 saying %q", tt.action, tt.id, code, b, tt.errHas)
		}
	}
	for _, id := range []string{paused.ID, pending.ID, first.ID, ended.ID} {
		if got := r.get(t, id); len(got.Intents) != 0 {
			t.Errorf("%s: refused intents were recorded: %+v", id, got.Intents)
		}
	}
}

func TestPromoteToNoStageIsUnprocessable(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod"))
	code, b := r.act(t, rel.ID, "promote", `{"percent": 30}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(errorOf(t, b), "30 % is not one of the steps; allowed: 10, 50, 100 %") {
		t.Errorf("%d %s, want 422 listing the stages", code, b)
	}
}

func TestBadControlRequests(t *testing.T) {
	r := newRig(t, token)
	rel := r.create(t, canary("web", "prod"))
	r.setState(t, rel.ID, release.Paused, 1, 10)
	tests := []struct {
		name, action, body string
		headers            []string
		errPrefix          string
	}{
		{"percent 0", "promote", `{"percent": 0}`, nil, "percent: 0 is not in 1..100"},
		{"percent 150", "promote", `{"percent": 150}`, nil, "percent: 150 is not in 1..100"},
		{"percent not a number", "promote", `{"percent": "fifty"}`, nil, "body: percent: want int, got string"},
		{"percent and full", "promote", `{"percent": 50, "full": true}`, nil, `body: give "percent" or "full", not both`},
		{"promote without target", "promote", ``, nil, `body: promote needs {"percent": N} or {"full": true}`},
		{"percent on pause", "continue", `{"percent": 50}`, nil, "percent: only promote takes a percent"},
		{"full on abort", "abort", `{"full": true}`, nil, "full: only promote takes full"},
		{"unknown field", "continue", `{"coment": "typo"}`, nil, `body: unknown field "coment"`},
		{"not JSON", "continue", `comment=hi`, nil, "body: not JSON"},
		{"truncated", "continue", `{"comment": "hi"`, nil, "body: not JSON"},
		{"two values", "continue", `{} {}`, nil, "body: more than one JSON value"},
		{"array", "continue", `[]`, nil, "body: want a JSON object"},
		{"comment too long", "continue", `{"comment": "` + strings.Repeat("x", 1001) + `"}`, nil, "comment: longer than 1000 bytes"},
		{"missing actor", "continue", ``, []string{api.HeaderActor, ""}, "X-Shipbot-Actor: missing"},
		{"blank actor", "continue", ``, []string{api.HeaderActor, "  "}, "X-Shipbot-Actor: missing"},
		{"engine as actor", "continue", ``, []string{api.HeaderActor, "Shipbot"}, `X-Shipbot-Actor: "Shipbot" is shipbot's own name`},
		{"control characters in actor", "continue", ``, []string{api.HeaderActor, "eve\tadmin"}, `X-Shipbot-Actor: "eve\tadmin" is not a GitLab username`},
		{"markdown in actor", "continue", ``, []string{api.HeaderActor, "[alice](https://evil.example)"}, `X-Shipbot-Actor: "[alice](https://evil.example)" is not a GitLab username`},
		{"space in actor", "continue", ``, []string{api.HeaderActor, "alice admin"}, `X-Shipbot-Actor: "alice admin" is not a GitLab username`},
		{"actor starting with a dot", "continue", ``, []string{api.HeaderActor, ".alice"}, `X-Shipbot-Actor: ".alice" is not a GitLab username`},
		{"shipbot's own surface", "continue", ``, []string{api.HeaderSurface, "shipbot"}, `X-Shipbot-Surface: "shipbot" is not cli or api`},
		{"unknown surface", "continue", ``, []string{api.HeaderSurface, "slack"}, `X-Shipbot-Surface: "slack" is not cli or api`},
	}
	for _, tt := range tests {
		code, b := r.act(t, rel.ID, tt.action, tt.body, tt.headers...)
		if code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, b), tt.errPrefix) {
			t.Errorf("%s: %d %s, want 400 starting %q", tt.name, code, b, tt.errPrefix)
		}
	}
	if got := r.get(t, rel.ID); len(got.Intents) != 0 {
		t.Errorf("bad requests recorded %+v", got.Intents)
	}
}

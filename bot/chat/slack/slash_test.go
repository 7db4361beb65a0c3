package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// fakeRoles is the GitLab the real Authorizer asks: on shop/checkout,
// alice is Maintainer and bob and carol are Developers.
type fakeRoles struct{}

var _ authz.GitLab = fakeRoles{}

var users = map[string]int64{"alice": 11, "bob": 12, "carol": 13}

func (fakeRoles) ProjectID(_ context.Context, path string) (int64, error) {
	switch path {
	case "shop/checkout":
		return 42, nil
	case "shop/web":
		return 43, nil
	}
	return 0, fmt.Errorf("project %s: %w", path, gitlab.ErrNotFound)
}

func (fakeRoles) AccessLevel(_ context.Context, _, userID int64) (gitlab.AccessLevel, error) {
	if userID == users["alice"] {
		return gitlab.Maintainer, nil
	}
	return gitlab.Developer, nil
}

func (fakeRoles) UserByUsername(_ context.Context, username string) (gitlab.User, error) {
	id, ok := users[username]
	if !ok {
		return gitlab.User{}, fmt.Errorf("user %s: %w", username, gitlab.ErrNotFound)
	}
	return gitlab.User{ID: id, Username: username, State: "active"}, nil
}

// roles is shipbot's own Authorizer over fakeRoles: prod2 wants a
// Maintainer, dev a Developer.
func roles() *authz.Authorizer {
	return authz.New(authz.Options{GitLab: fakeRoles{}, Log: quiet(), RequiredAccess: func(env string) gitlab.AccessLevel {
		if env == "dev" {
			return gitlab.Developer
		}
		return gitlab.Maintainer
	}})
}

// withRoles judges releases as the test says and environments by roles.
type withRoles struct {
	authorizeFunc
	env *authz.Authorizer
}

func (z withRoles) AuthorizeEnvironment(ctx context.Context, a ops.Actor, project, env string, action ops.EnvAction) error {
	return z.env.AuthorizeEnvironment(ctx, a, project, env, action)
}

// noBuilds is a GitLab in which no tag or commit has a build.
type noBuilds struct{ fakeRoles }

func (noBuilds) FindBuild(_ context.Context, _ int64, ref string) (gitlab.Build, error) {
	return gitlab.Build{}, fmt.Errorf("ref %s: %w", ref, gitlab.ErrNotFound)
}

// governance is what the slash command acts through in tests: ops, and the
// real version deployer over a GitLab without builds. shop/checkout
// deploys to prod2, and shop/web too to dev.
func governance(svc *ops.Service) Governance {
	return Governance{
		Locks:   svc,
		Deploys: &govern.Deploys{GitLab: noBuilds{}, Ops: svc, Log: quiet()},
		Projects: func(env string) []string {
			switch env {
			case "prod2":
				return []string{"shop/checkout"}
			case "dev":
				return []string{"shop/checkout", "shop/web"}
			}
			return nil
		},
	}
}

// slashBody is the form Slack posts when user types /shipbot text.
func (e *env) slashBody(user, text string) string {
	return url.Values{
		"token": {"deprecated"}, "team_id": {"T1"}, "team_domain": {"example"}, "channel_id": {testChannel},
		"channel_name": {"deploys"}, "user_id": {user}, "user_name": {"someone"}, "command": {"/shipbot"},
		"text": {text}, "api_app_id": {"A1"}, "response_url": {e.slack.ResponseURL()}, "trigger_id": {"1.2.3"},
	}.Encode()
}

// slashAt posts a slash command signed with secret at time at, and returns
// the status and the text of the reply, which must be ephemeral.
func (e *env) slashAt(body, secret string, at time.Time) (int, string) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, CommandsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sign(req.Header, secret, at, body)
	rec := httptest.NewRecorder()
	echoServer(e.app).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code, rec.Body.String()
	}
	var msg struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &msg); err != nil || msg.ResponseType != "ephemeral" {
		e.t.Fatalf("reply %s: want an ephemeral message (%v)", rec.Body, err)
	}
	return rec.Code, msg.Text
}

// slash is user typing /shipbot text, a second after the last command, so
// that each request is a new one.
func (e *env) slash(user, text string) string {
	e.t.Helper()
	e.now = e.now.Add(time.Second)
	code, reply := e.slashAt(e.slashBody(user, text), testSecret, e.now)
	if code != http.StatusOK {
		e.t.Fatalf("/shipbot %s: status %d", text, code)
	}
	return reply
}

func (e *env) lock(env string) (release.Lock, bool) {
	e.t.Helper()
	l, ok, err := e.engine.EnvironmentLock(context.Background(), env)
	if err != nil {
		e.t.Fatal(err)
	}
	return l, ok
}

func TestSlashCommandRejectsUnsignedAndReplayed(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	body := e.slashBody(alice, `lock prod2 "debugging"`)
	for name, tt := range map[string]struct {
		secret string
		at     time.Duration
	}{"wrong secret": {"not-the-secret", 0}, "timestamp 6 minutes old": {testSecret, -6 * time.Minute}} {
		if code, _ := e.slashAt(body, tt.secret, e.now.Add(tt.at)); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	if l, ok := e.lock("prod2"); ok {
		t.Fatalf("an unsigned command locked prod2: %+v", l)
	}

	at := e.now
	if code, _ := e.slashAt(body, testSecret, at); code != http.StatusOK {
		t.Fatalf("signed: status %d", code)
	}
	e.slash(alice, "unlock prod2")
	// The lock command, captured and sent again, must not lock anew.
	if code, _ := e.slashAt(body, testSecret, at); code != http.StatusUnauthorized {
		t.Errorf("replay: status %d, want 401", code)
	}
	if l, ok := e.lock("prod2"); ok {
		t.Errorf("a replayed command locked prod2 again: %+v", l)
	}
}

func TestSlashCommandLocksAndUnlocks(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	reply := e.slash(alice, `lock prod2 "debugging"`)
	if want := `:lock: Locked: prod2 is locked by alice: "debugging".`; !strings.HasPrefix(reply, want) {
		t.Errorf("reply %q, want it to start %q", reply, want)
	}
	l, ok := e.lock("prod2")
	if !ok || l.Holder != "alice" || l.Reason != "debugging" || l.Surface != release.SurfaceSlack {
		t.Fatalf("lock %+v (%v), want prod2 held by alice via slack for debugging", l, ok)
	}

	// bob is a Developer: he may not break alice's lock.
	reply = e.slash(bob, "unlock prod2")
	if want := ":no_entry: You can't unlock prod2: bob is Developer on shop/checkout; prod2 needs Maintainer to break a lock."; !strings.HasPrefix(reply, want) {
		t.Errorf("bob's unlock: %q, want it to start %q", reply, want)
	}
	if _, ok := e.lock("prod2"); !ok {
		t.Fatal("bob's refused unlock removed the lock")
	}

	if reply = e.slash(alice, "unlock prod2"); reply != ":unlock: Unlocked prod2." {
		t.Errorf("alice's unlock: %q", reply)
	}
	if l, ok := e.lock("prod2"); ok {
		t.Errorf("still locked: %+v", l)
	}
	if reply = e.slash(alice, "unlock prod2"); !strings.HasPrefix(reply, ":warning: Cannot unlock prod2: prod2 is not locked") {
		t.Errorf("unlocking an unlocked environment: %q", reply)
	}
}

func TestSlashCommandDeployChecksRole(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	reply := e.slash(bob, "deploy v1.0.0 to prod2")
	if want := ":no_entry: You can't deploy `v1.0.0` to prod2: bob is Developer on shop/checkout; prod2 needs Maintainer to deploy. Nothing was done."; reply != want {
		t.Errorf("bob's deploy:\n got %q\nwant %q", reply, want)
	}
	// alice may: her deploy goes on to GitLab, which knows no such build.
	reply = e.slash(alice, "deploy v9.9.9 to prod2")
	if want := ":warning: Cannot deploy `v9.9.9` to prod2: shop/checkout has no tag or commit v9.9.9. Nothing was done."; reply != want {
		t.Errorf("alice's deploy:\n got %q\nwant %q", reply, want)
	}
	rels, err := e.engine.List(context.Background(), release.Filter{})
	if err != nil || len(rels) != 0 {
		t.Errorf("releases %v (%v), want none", rels, err)
	}
}

func TestSlashCommandDeployRespectsLock(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	if reply := e.slash(alice, `lock dev "load test" --project shop/checkout`); !strings.HasPrefix(reply, ":lock:") {
		t.Fatalf("alice's lock: %q", reply)
	}
	reply := e.slash(carol, "deploy v1.0.0 to dev --project shop/checkout")
	if want := `:no_entry: You can't deploy ` + "`v1.0.0`" + ` to dev: dev is locked by alice: "load test"; only alice can act`; !strings.HasPrefix(reply, want) {
		t.Errorf("carol's deploy to alice's environment:\n got %q\nwant %q…", reply, want)
	}
}

// TestSlashCommandReplies: what people read for each kind of command,
// without any change to the store unless the command is a lock.
func TestSlashCommandReplies(t *testing.T) {
	cases := []struct{ name, user, text, want string }{
		{"help", alice, "help", slashUsage},
		{"nothing", alice, "", ":warning: No command after `/shipbot`.\n\n" + slashUsage},
		{"unknown verb", alice, "frobnicate prod2", ":warning: Unknown command `frobnicate`.\n\n" + slashUsage},
		{"merge request command", alice, "promote 50", ":information_source: `/shipbot promote` works in merge request comments; in Slack, use the buttons on the release's message.\n\n" + slashUsage},
		{"lock without environment", alice, "lock", ":warning: `/shipbot lock` needs an environment, e.g. `/shipbot lock prod2 \"db migration\"`.\n\n" + slashUsage},
		{"bad project", alice, "lock prod2 --project ../x", ":warning: `--project` takes a GitLab project path, e.g. `--project shop/web`.\n\n" + slashUsage},
		{"several projects", alice, "lock dev", ":warning: Several projects deploy to `dev` (shop/checkout, shop/web); say whose role decides with `--project &lt;group/project&gt;`."},
		{"no project", alice, "lock qa", ":warning: No project deploys to `qa` in shipbot's config; name one with `--project &lt;group/project&gt;`."},
		{"unknown person", "U0NOBODY", "lock prod2", ":bust_in_silhouette: shipbot could not match your Slack account to a GitLab user, so it cannot act for you. Ask an admin to check that your Slack email is on your GitLab account."},
		{"escaped reason", alice, `lock dev "a & b" --project shop/web`, ":lock: Locked: dev is locked by alice: \"a &amp; b\". Until `/shipbot unlock dev`, releases there start and move on only for alice."},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ModeHTTP)
			if got := e.slash(tt.user, tt.text); got != tt.want {
				t.Errorf("/shipbot %s:\n got %q\nwant %q", tt.text, got, tt.want)
			}
			ls, err := e.engine.Locks(context.Background())
			if locks := strings.HasPrefix(tt.want, ":lock:"); err != nil || (len(ls) == 1) != locks {
				t.Errorf("locks %+v (%v) after /shipbot %s", ls, err, tt.text)
			}
		})
	}
}

// TestSocketModeSlashCommand: over Socket Mode, the command's envelope is
// acked with the ephemeral reply, and the lock is taken as over HTTP.
func TestSocketModeSlashCommand(t *testing.T) {
	e := newEnv(t, ModeSocket)
	payload := map[string]any{"command": "/shipbot", "text": `lock prod2 "debugging"`, "user_id": alice,
		"user_name": "someone", "team_id": "T1", "channel_id": testChannel, "response_url": e.slack.ResponseURL(), "trigger_id": "1.2.3"}
	type ack struct {
		EnvelopeID string `json:"envelope_id"`
		Payload    struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		} `json:"payload"`
	}
	acks := make(chan ack, 1)
	e.slack.set(func(f *fakeSlack) {
		f.ws = func(c *websocket.Conn) {
			_ = c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
			_ = c.WriteJSON(map[string]any{"type": "slash_commands", "envelope_id": "env-7", "payload": payload, "accepts_response_payload": true})
			var a ack
			if err := c.ReadJSON(&a); err == nil {
				acks <- a
			}
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.app.Run(ctx) }()
	defer func() { cancel(); <-done; e.app.Close() }()
	select {
	case a := <-acks:
		if a.EnvelopeID != "env-7" || a.Payload.ResponseType != "ephemeral" || !strings.HasPrefix(a.Payload.Text, ":lock: Locked: prod2 is locked by alice") {
			t.Errorf("ack %+v, want env-7 acked with an ephemeral reply that prod2 is locked", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack within 10 s")
	}
	if l, ok := e.lock("prod2"); !ok || l.Holder != "alice" || l.Surface != release.SurfaceSlack {
		t.Errorf("lock %+v (%v), want prod2 held by alice via slack", l, ok)
	}
}

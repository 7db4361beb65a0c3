package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

const (
	testChannel = "C0SHIP"
	testSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	alice       = "U0ALICE"
	bob         = "U0BOB"
	carol       = "U0CAROL" // linked by Slack id; Slack will not say her email
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// fixture is a canary release of checkout in prod, as the engine stores it,
// moving to its first stage.
func fixture() release.Release {
	return release.Release{
		ID: "r000000000007", App: "checkout", Project: "shop/checkout", Environment: "prod", Cluster: "eu-1", Namespace: "shop",
		From:        release.Revision{Name: "v1-3-0", Image: "registry.example.com/shop/checkout:1.3.0"},
		To:          release.Revision{Name: "v1-4-0", Image: "registry.example.com/shop/checkout:1.4.0"},
		Strategy:    release.Canary,
		TriggeredBy: "alice", PipelineID: 4242, WebURL: "https://gitlab.example.com/shop/checkout/-/pipelines/4242",
		Replicas: 4, MinAvailable: 4,
		Stages: []release.Stage{
			{Target: 10, Continue: release.Manual},
			{Target: 50, Continue: release.Auto},
			{Target: 100, Continue: release.Auto},
		},
		Phase: release.Progressing, Created: t0, Updated: t0,
	}
}

// pausedByGate is the fixture paused at stage 1/3 with 10 % on the new
// version, its after-gate failed: where the engine leaves a release whose
// gate has onFailure: pause.
func pausedByGate(r release.Release) release.Release {
	r.Phase, r.Stage, r.Percent, r.Updated = release.Paused, 0, 10, t0.Add(4*time.Minute)
	r.Checks = []release.Check{
		{Stage: 0, When: release.Pods, Gate: "pods", Status: release.CheckPassed, Started: t0, Message: "checkout-v1-4-0: 1/1 available"},
		{Stage: 0, When: release.After, Gate: "error-rate", Status: release.CheckFailed, Started: t0.Add(time.Minute), Runs: 3, Failures: 3,
			Message: "5.2 > 1 (5xx per second)"},
	}
	r.History = append(r.History, release.Entry{At: t0.Add(4 * time.Minute), Actor: release.EngineActor, Kind: release.EntryTransition,
		Phase: release.Paused, Message: "Verifying → Paused: gate error-rate failed"})
	return r
}

func event(reason release.Reason, r release.Release, msg string, at time.Time) release.Event {
	return release.Event{Reason: reason, Release: r, Summary: release.Describe(r, at), Message: msg, At: at}
}

// authorizeFunc is a test Authorizer.
type authorizeFunc func(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error

func (f authorizeFunc) Authorize(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error {
	return f(ctx, a, r, kind)
}

var _ ops.Authorizer = authorizeFunc(nil)

// identitiesFunc is a test Identities.
type identitiesFunc func(ctx context.Context, slackUserID, email string) (ops.Actor, error)

func (f identitiesFunc) Resolve(ctx context.Context, slackUserID, email string) (ops.Actor, error) {
	return f(ctx, slackUserID, email)
}

var _ Identities = identitiesFunc(nil)

// gitlabByEmail maps Slack users to GitLab accounts as the real resolver
// does: carol by her Slack id, as shipbot.yaml's users may link her, and
// the others by email.
var gitlabByEmail = identitiesFunc(func(_ context.Context, id, email string) (ops.Actor, error) {
	if id == carol {
		return ops.Actor{Username: "carol", UserID: 13}, nil
	}
	switch email {
	case "":
		return ops.Actor{}, fmt.Errorf("slack user %s: %w", id, ops.ErrNotMapped)
	case "alice@example.com":
		return ops.Actor{Username: "alice", UserID: 11}, nil
	case "bob@example.com":
		return ops.Actor{Username: "bob", UserID: 12}, nil
	}
	return ops.Actor{}, fmt.Errorf("no GitLab user has the email %q", email)
})

// env is shipbot's Slack surface over a real engine on a real bbolt file,
// talking to an in-process Slack.
type env struct {
	t      *testing.T
	slack  *fakeSlack
	path   string
	st     *store.Store
	engine *release.Stepper
	authz  func(a ops.Actor, kind release.IntentKind) error // nil allows everything
	app    *App
	now    time.Time

	channels map[string]string // Options.Channels of the next open
	minSev   notify.Severity   // Options.MinSeverity of the next open
}

func newEnv(t *testing.T, mode Mode) *env {
	t.Helper()
	e := &env{t: t, slack: newFakeSlack(t), path: filepath.Join(t.TempDir(), "shipbot.db"), now: time.Now()}
	e.slack.set(func(f *fakeSlack) {
		f.emails[alice] = "alice@example.com"
		f.emails[bob] = "bob@example.com"
	})
	e.open(mode)
	return e
}

// open opens the store and builds the engine and the Slack app on it.
func (e *env) open(mode Mode) {
	e.t.Helper()
	st, err := store.Open(e.path, store.Options{NoSync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	e.st = st
	e.engine, err = release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Log: quiet()})
	if err != nil {
		e.t.Fatal(err)
	}
	authz := authorizeFunc(func(_ context.Context, a ops.Actor, _ release.Release, kind release.IntentKind) error {
		if e.authz == nil {
			return nil
		}
		return e.authz(a, kind)
	})
	svc := &ops.Service{Releases: e.engine, Authz: withRoles{authz, roles()}, Log: quiet()}
	e.app, err = New(Options{
		BotToken: "xoxb-test", SigningSecret: testSecret, AppToken: "xapp-test", Channel: testChannel, Mode: mode,
		Channels: e.channels, MinSeverity: e.minSev,
		Store: st, Ops: svc, Identities: gitlabByEmail, Governance: governance(svc),
		Log: quiet(), APIURL: e.slack.GetAPIURL(), Now: func() time.Time { return e.now }, Timeout: 5 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// restart closes the store and opens everything anew on the same file, as
// a new shipbot process would.
func (e *env) restart(mode Mode) {
	e.t.Helper()
	e.app.Close()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open(mode)
}

// createPaused has the engine create the fixture and stores it paused by
// its failed gate, the state the engine itself would reach.
func (e *env) createPaused() release.Release {
	e.t.Helper()
	r := fixture()
	r.ID, r.Phase, r.Stage, r.Percent = "", "", 0, 0
	r, err := e.engine.Create(context.Background(), r)
	if err != nil {
		e.t.Fatal(err)
	}
	paused := pausedByGate(r)
	err = e.st.UpdateRelease(r.ID, func([]byte) ([]byte, error) { return json.Marshal(paused) })
	if err != nil {
		e.t.Fatal(err)
	}
	return e.get(r.ID)
}

func (e *env) get(id string) release.Release {
	e.t.Helper()
	r, err := e.engine.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// click is a block_actions payload as Slack sends it when user presses a
// button of the release message at ts.
func (e *env) click(user, ts, actionID, value string) string {
	return fmt.Sprintf(`{
  "type": "block_actions",
  "user": {"id": %q, "username": "someone", "team_id": "T1"},
  "api_app_id": "A1",
  "team": {"id": "T1", "domain": "example"},
  "container": {"type": "message", "message_ts": %q, "channel_id": %q, "is_ephemeral": false},
  "trigger_id": "1.2.3",
  "channel": {"id": %q, "name": "deploys"},
  "message": {"type": "message", "ts": %q, "text": "checkout"},
  "response_url": %q,
  "actions": [{"action_id": %q, "block_id": "shipbot-actions", "text": {"type": "plain_text", "text": "x"}, "value": %q, "type": "button", "action_ts": "1700000100.000001"}]
}`, user, ts, testChannel, testChannel, ts, e.slack.ResponseURL(), actionID, value)
}

// post sends a payload to the handler signed with secret at time at, and
// returns the status and how long the answer took.
func (e *env) post(payload, secret string, at time.Time) (int, time.Duration) {
	e.t.Helper()
	body := url.Values{"payload": {payload}}.Encode()
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sign(req.Header, secret, at, body)
	return e.serve(req)
}

func (e *env) serve(req *http.Request) (int, time.Duration) {
	ec := echoServer(e.app)
	rec := httptest.NewRecorder()
	start := time.Now()
	ec.ServeHTTP(rec, req)
	return rec.Code, time.Since(start)
}

// sign sets Slack's v0 signature headers.
func sign(h http.Header, secret string, at time.Time, body string) {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pendingIntents are the intents the engine has not acted on.
func pendingIntents(r release.Release) []release.Intent {
	var out []release.Intent
	for _, in := range r.Intents {
		if in.Done.IsZero() {
			out = append(out, in)
		}
	}
	return out
}

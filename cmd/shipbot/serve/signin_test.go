package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/chat/dingtalk"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	linkSecret = "link-secret-0123456789abcdef0123456789"
	glToken    = "glpat-shipbot"
)

// signinConfig is shipbot.yaml with sign-in, DingTalk confirming as the
// signed-in GitLab user and the dashboard for members of shop/web, against
// gitlab and a cluster that never answers.
func signinConfig(t *testing.T, gitlabURL, publicURL, robotURL string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("shipbot.yaml", fmt.Appendf(nil, `listen: %s
publicURL: %s
gitlab: {baseURL: %s, token: %s, webhookSecret: hook}
store: {path: %s}
clusters: [{name: local, kubeconfig: %s}]
environments:
  - {name: prod, clusters: [local], namespace: web, refs: {tags: ['^v']}}
apps:
  - {name: web, project: shop/web, environments: {prod: {}}}
signin: {clientID: shipbot, clientSecret: app-secret, sessionKey: %s}
dingtalk: {webhookURL: %s, linkSecret: %s}
dashboard: {access: gitlab}
`, strings.TrimPrefix(publicURL, "http://"), publicURL, gitlabURL, glToken, filepath.Join(dir, "shipbot.db"), kubeconfig,
		strings.Repeat("s", 32), robotURL, linkSecret))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// freeAddr is an address to listen on that is free now, so that
// publicURL can name it before shipbot starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The real start-up with a signin section: /auth/gitlab/ is served once,
// and both the dashboard and DingTalk's confirmation pages sign people in
// through it, as the GitLab user GitLab names.
func TestSignInServesDashboardAndDingTalk(t *testing.T) {
	gl := fakegitlab.New(t, glToken)
	gl.SetUser(fakegitlab.User{ID: 10, Username: "alice"})
	gl.SetUser(fakegitlab.User{ID: 11, Username: "bob"})
	gl.SetProjectPath(9, "shop/web")
	gl.SetMember(9, 10, 40)
	gl.SetMember(9, 11, 40)
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	t.Cleanup(robot.Close)
	public := "http://" + freeAddr(t)
	gl.SetOAuthApp(fakegitlab.OAuthApp{ClientID: "shipbot", ClientSecret: "app-secret", RedirectURI: public + signin.CallbackPath, Scopes: []string{"read_user"}})
	m := &Main{Config: signinConfig(t, gl.URL(), public, robot.URL), Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	// A release of web paused after stage 1/3, started by bob. It is written
	// to the store as paused, not created pending: a pending release would
	// be stepped by the running engine, racing the test to its state.
	id, err := m.Store().CreateRelease(func(id string) ([]byte, error) {
		return json.Marshal(release.Release{ID: id,
			App: "web", Project: "shop/web", Environment: "prod", Cluster: "local", Namespace: "web", Strategy: release.Canary,
			From: release.Revision{Name: "v1", Image: "web:1"}, To: release.Revision{Name: "v2", Image: "web:2"}, TriggeredBy: "bob",
			Stages: []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50}, {Target: 100}},
			Phase:  release.Paused, Stage: 1, Percent: 10, Created: time.Now(), Updated: time.Now(),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	r := release.Release{ID: id}
	tokens, err := dingtalk.NewTokens(linkSecret, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokens.Issue(dingtalk.Action{Release: r.ID, Kind: release.IntentContinue, Stage: 1})
	if err != nil {
		t.Fatal(err)
	}
	link := public + dingtalk.ActionsPath + tok

	gl.SignInAs(10)
	jar, _ := cookiejar.New(nil)
	alice := &http.Client{Jar: jar}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := alice.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(public + "/"); code != http.StatusOK || !strings.Contains(body, `id="matrix"`) {
		t.Fatalf("dashboard after signing in: %d\n%s", code, body)
	}
	// The same session serves the confirmation page: no second trip to GitLab.
	calls := len(gl.CallLog())
	if code, body := get(link); code != http.StatusOK || !strings.Contains(body, "Acting as <strong>alice</strong>") {
		t.Fatalf("confirmation page: %d\n%s", code, body)
	}
	for _, c := range gl.CallLog()[calls:] {
		if strings.HasPrefix(c, "GET /oauth/") || c == "POST /oauth/token" {
			t.Errorf("signed in again: %s", c)
		}
	}
	resp, err := alice.PostForm(link, url.Values{"comment": {"looks good"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Recorded: continue, by alice") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, b)
	}
	got, err := m.Releases().Stepper.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range got.History {
		found = found || (e.Kind == release.EntryIntent && e.Actor == "alice" && e.Surface == release.SurfaceDingTalk)
	}
	if !found {
		t.Errorf("no continue by alice from dingtalk in the history: %+v", got.History)
	}

	// A forged proxy header is nobody here.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, link, strings.NewReader(""))
	req.Header.Set("X-Forwarded-User", "bob")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged header: %v %v, want 401", resp.StatusCode, err)
	}
}

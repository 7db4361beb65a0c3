package dashboard_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/dashboard"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// rig is the real dashboard on a real Echo, reading a real bbolt store and
// release engine (which creates and reads releases without a cluster).
type rig struct {
	srv    *httptest.Server
	store  *store.Store
	engine *release.Stepper
}

func newRig(t *testing.T, access dashboard.Access) *rig {
	t.Helper()
	return newRigWith(t, func(*echo.Echo, string) dashboard.Access { return access })
}

// newRigWith builds the access once the server's URL is known, on the
// server's Echo, e.g. to sign in.
func newRigWith(t *testing.T, access func(e *echo.Echo, url string) dashboard.Access) *rig {
	t.Helper()
	e := echo.New()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: fixedClock(t0), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboard.New(dashboard.Options{Records: st, Releases: eng, Access: access(e, srv.URL), Environments: []string{"dev", "prod"},
		Log: log, Now: func() time.Time { return t0.Add(90 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(e)
	return &rig{srv: srv, store: st, engine: eng}
}

func (r *rig) seed(t *testing.T) release.Release {
	t.Helper()
	err := r.store.PutDeployment(store.Deployment{ID: store.FormatID(1), App: "web", Project: "shop/web", Environment: "dev", Cluster: "c1",
		Ref: "dev", SHA: strings.Repeat("d", 40), Image: "registry.example.com/shop/web:dev", User: "dora", Status: store.StatusSucceeded, Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.store.Update(func(tx *store.Tx) error {
		return tx.PutPreview(store.Preview{Key: "9!4", Project: "shop/web", IID: 4, Title: "<b>Faster</b> checkout", Status: store.PreviewReady,
			WebURL: "https://gitlab.example.com/shop/web/-/merge_requests/4", SourceBranch: "feature-checkout", LastActivity: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := r.engine.Create(t.Context(), release.Release{
		App: "web", Project: "shop/web", Environment: "prod", Cluster: "c1", Namespace: "web", Strategy: release.Canary,
		From: release.Revision{Name: "v1-0-0", Image: "web:1"}, To: release.Revision{Name: "v1-1-0", Image: "web:1.1", Ref: "v1.1.0"},
		Stages:      []release.Stage{{Target: 10, Continue: release.Manual}, {Target: 50}, {Target: 100}},
		Params:      templates.Params{Ports: []templates.Port{{Port: 80}}, Env: []templates.EnvVar{{Name: "DB_PASSWORD", Value: "hunter2-db"}}},
		TriggeredBy: "carol", PipelineID: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.engine.Record(t.Context(), rel.ID, release.Intent{Kind: release.IntentPause, Actor: "alice", Surface: release.SurfaceSlack, Comment: "<script>alert(1)</script>"}); err != nil {
		t.Fatal(err)
	}
	return rel
}

func get(t *testing.T, c *http.Client, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func mustContain(t *testing.T, what, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s does not contain %q", what, p)
		}
	}
}

func TestOverviewPage(t *testing.T) {
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessOpen})
	rel := r.seed(t)
	code, h, body := get(t, nil, r.srv.URL+"/")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, h.Get("Content-Type"))
	}
	mustContain(t, "the overview", body,
		`<td class="cell ok" data-env="dev">`, `dddddddd`, `succeeded`, `by dora`,
		`<tr data-release="`+rel.ID+`">`, `<td class="stage">1/3</td>`, `pending · canary v1-0-0 → v1-1-0 in 3 stages`,
		`<td class="in-stage">1h30m</td>`,
		`href="https://gitlab.example.com/shop/web/-/merge_requests/4"`, `&lt;b&gt;Faster&lt;/b&gt; checkout`,
		`<meta http-equiv="refresh" content="15">`)
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "<form") || strings.Contains(body, "method=\"post\"") || strings.Contains(body, "<script") {
		t.Errorf("the overview offers an action or runs a script")
	}
}

func TestReleasePage(t *testing.T) {
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessOpen})
	rel := r.seed(t)
	code, _, body := get(t, nil, r.srv.URL+"/releases/"+rel.ID)
	if code != http.StatusOK {
		t.Fatalf("GET /releases/%s: %d\n%s", rel.ID, code, body)
	}
	mustContain(t, "the release page", body,
		`<td class="actor">shipbot</td>`, `created: canary v1-0-0 → v1-1-0`,
		`<td class="actor">alice</td>`, `<td class="surface">slack</td>`, `<td class="kind">intent</td>`,
		`pause requested: &lt;script&gt;alert(1)&lt;/script&gt;`, `2026-03-01 10:00:00`, `#7`)
	if strings.Contains(body, "<script>") || strings.Contains(body, "hunter2-db") {
		t.Errorf("the release page runs a received script or shows a secret param")
	}
	code, _, body = get(t, nil, r.srv.URL+"/releases/r000000000404")
	if code != http.StatusNotFound || !strings.Contains(body, "release r000000000404 not found") {
		t.Errorf("unknown release: %d\n%s", code, body)
	}
}

func TestEmptyOverview(t *testing.T) {
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessOpen})
	code, _, body := get(t, nil, r.srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	mustContain(t, "the empty overview", body, "Nothing deployed or released yet.", "No release in flight.", "No preview environments.")
}

func TestTokenAccess(t *testing.T) {
	const token = "dashboard-token-0123456789"
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessToken, Token: token})
	for _, path := range []string{"/", "/releases/r000000000001"} {
		code, h, body := get(t, nil, r.srv.URL+path)
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || strings.Contains(body, "matrix") {
			t.Errorf("GET %s without a token: %d %q", path, code, h.Get("WWW-Authenticate"))
		}
	}
	if code, _, body := get(t, nil, r.srv.URL+"/?token=guess"); code != http.StatusUnauthorized || strings.Contains(body, "guess") {
		t.Errorf("wrong token: %d, or the guess is echoed", code)
	}
	if code, _, _ := get(t, nil, r.srv.URL+"/", "Authorization", "Bearer "+token); code != http.StatusOK {
		t.Errorf("bearer token: %d", code)
	}
	// A browser visits /?token= once; the cookie keeps it signed in, and
	// the token leaves the address bar.
	jar, _ := cookiejar.New(nil)
	var landed string
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error { landed = req.URL.String(); return nil }}
	if code, _, _ := get(t, browser, r.srv.URL+"/?token="+token); code != http.StatusOK || landed != r.srv.URL+"/" {
		t.Fatalf("sign-in link: %d, landed on %q", code, landed)
	}
	for _, ck := range jar.Cookies(mustURL(t, r.srv.URL)) {
		if strings.Contains(ck.Value, token) {
			t.Errorf("the cookie holds the token itself")
		}
	}
	if code, _, _ := get(t, browser, r.srv.URL+"/releases/r000000000404"); code != http.StatusNotFound {
		t.Errorf("with the cookie: %d, want through to 404", code)
	}
	if code, _, _ := get(t, nil, r.srv.URL+"/", "Cookie", dashboard.CookieName+"=forged"); code != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d", code)
	}
	// The stylesheet is public: the sign-in page needs it.
	if code, h, _ := get(t, nil, r.srv.URL+"/assets/style.css"); code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", code, h.Get("Content-Type"))
	}
}

func TestBasicAccess(t *testing.T) {
	r := newRig(t, dashboard.Access{Mode: dashboard.AccessBasic, Username: "ops", Password: "pw-1"})
	req := func(user, pass string) int {
		t.Helper()
		hreq, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.srv.URL+"/", nil)
		if user != "" {
			hreq.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge")
		}
		return resp.StatusCode
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"ops", "pw-1", 200}, {"ops", "pw-2", 401}, {"root", "pw-1", 401}, {"", "", 401}} {
		if got := req(c.user, c.pass); got != c.want {
			t.Errorf("%q/%q: %d, want %d", c.user, c.pass, got, c.want)
		}
	}
}

func TestNewRefusesBadAccess(t *testing.T) {
	for _, a := range []dashboard.Access{{Mode: ""}, {Mode: "token"}, {Mode: "basic", Username: "ops"}, {Mode: "gitlab"}} {
		if _, err := dashboard.New(dashboard.Options{Access: a}); err == nil {
			t.Errorf("access %+v accepted", a)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

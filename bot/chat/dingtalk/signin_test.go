package dingtalk

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// GitLab users of the sign-in tests. alice started the release; alice,
// bob and dave maintain group/web, carol develops it.
const (
	aliceID int64 = 10
	bobID   int64 = 11
	carolID int64 = 13
	daveID  int64 = 14
	webID   int64 = 5
)

// webRig is the confirmation pages on a real HTTP server, people signing in
// with GitLab (a fake one), and the real authorizer asking that GitLab for
// their roles, with forbidSelfApproval on.
type webRig struct {
	*rig
	srv    *httptest.Server
	gitlab *fakegitlab.Server
}

func newWebRig(t *testing.T, approvals int) *webRig {
	gl := fakegitlab.New(t, "shipbot-token")
	for id, name := range map[int64]string{aliceID: "alice", bobID: "bob", carolID: "carol", daveID: "dave"} {
		gl.SetUser(fakegitlab.User{ID: id, Username: name})
	}
	gl.SetProjectPath(webID, "group/web")
	gl.SetMember(webID, aliceID, 40)
	gl.SetMember(webID, bobID, 40)
	gl.SetMember(webID, daveID, 40)
	gl.SetMember(webID, carolID, 30)
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	gl.SetOAuthApp(fakegitlab.OAuthApp{ClientID: "shipbot", ClientSecret: "app-secret",
		RedirectURI: srv.URL + signin.CallbackPath, Scopes: []string{"read_user"}})
	s, err := signin.New(signin.Options{GitLabURL: gl.URL(), ClientID: "shipbot", ClientSecret: "app-secret",
		PublicURL: srv.URL, SessionKey: []byte(strings.Repeat("k", 32)), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	g := newRig(t, func(o *HandlerOptions) { o.Identity, o.PublicURL = s, srv.URL })
	s.Register(g.echo)
	handler = g.echo
	client, err := gitlab.New(gl.URL(), "shipbot-token")
	if err != nil {
		t.Fatal(err)
	}
	g.ops.Authz = authz.New(authz.Options{GitLab: client, ForbidSelfApproval: true, TTL: -1, Log: quietLog(),
		RequiredAccess: func(string) gitlab.AccessLevel { return gitlab.Maintainer },
		Approvals:      func(string) int { return approvals }})
	return &webRig{rig: g, srv: srv, gitlab: gl}
}

// browser is one person's browser: a cookie jar, and the redirects of its
// last request.
type browser struct {
	t      *testing.T
	w      *webRig
	client *http.Client
	hops   []*url.URL
}

// browser opens a browser for the person signed in to GitLab as userID.
func (w *webRig) browser(userID int64) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: w.t, w: w}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/oauth/authorize" {
			w.gitlab.SignInAs(userID) // whoever is at GitLab in this browser
		}
		b.hops = append(b.hops, req.URL)
		return nil
	}}
	return b
}

// do sends method to path, following redirects; a POST confirms with a
// comment, from shipbot's own page, with headers added.
func (b *browser) do(method, path string, header ...string) (int, string) {
	b.t.Helper()
	b.hops = nil
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"comment": {"ship it"}}.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.w.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.w.srv.URL)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func has(t *testing.T, code int, body string, wantCode int, says ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("status %d, want %d: %s", code, wantCode, body)
	}
	for _, s := range says {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q: %s", s, body)
		}
	}
}

// A person opens a button's link, signs in with GitLab on the way (PKCE,
// state bound to the browser, the code redeemed with the verifier), sees
// the confirmation page as the GitLab user GitLab named, and confirms: the
// intent is recorded as that user, through ops.
func TestSignInWithGitLabThenConfirm(t *testing.T) {
	w := newWebRig(t, 1)
	link := w.link(release.IntentContinue, 1)
	bob := w.browser(bobID)

	code, body := bob.do(http.MethodGet, link)
	has(t, code, body, http.StatusOK, "Continue web v1 → v2 in prod?", "Acting as <strong>bob</strong>", `<form method="post">`)
	if len(bob.hops) != 3 {
		t.Fatalf("redirects %v, want GitLab, the callback, the link", bob.hops)
	}
	auth, cb, back := bob.hops[0], bob.hops[1], bob.hops[2]
	if q := auth.Query(); auth.Path != "/oauth/authorize" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("state") == "" || q.Get("scope") != "read_user" {
		t.Errorf("authorize request %s", auth)
	}
	if strings.Contains(auth.String(), link[len(ActionsPath):]) {
		t.Errorf("the link's token went to GitLab: %s", auth)
	}
	if cb.Path != signin.CallbackPath || back.Path != link {
		t.Errorf("callback %s, then %s", cb, back)
	}
	calls := w.gitlab.CallLog()
	if !slices.Contains(calls, "POST /oauth/token") || !slices.Contains(calls, "GET /api/v4/user") || len(w.gitlab.OAuthDenials()) != 0 {
		t.Errorf("GitLab saw %v, refused %q", calls, w.gitlab.OAuthDenials())
	}

	code, body = bob.do(http.MethodPost, link)
	has(t, code, body, http.StatusOK, "Recorded: continue, by bob")
	in := w.intents()
	if len(in) != 1 || in[0].Actor != "bob" || in[0].Surface != release.SurfaceDingTalk || in[0].Comment != "ship it" {
		t.Errorf("intents %+v, want bob's continue from dingtalk", in)
	}
	if slices.Contains(w.gitlab.CallLog(), "GET /api/v4/users") {
		t.Error("bob was looked up by name: the actor should carry the GitLab id sign-in gave")
	}
}

// Signed in or not, what a person may do is ops' to decide, as for every
// surface: the person who started a release may not continue it
// (forbidSelfApproval), a developer may not act in prod, and nor may
// someone GitLab has blocked since they signed in.
func TestSignedInPeopleStillGoThroughOps(t *testing.T) {
	w := newWebRig(t, 1)
	link := w.link(release.IntentContinue, 1)
	code, body := w.browser(aliceID).do(http.MethodPost, link)
	has(t, code, body, http.StatusUnauthorized, "cannot tell who you are", "Open the link again")
	alice := w.browser(aliceID)
	alice.do(http.MethodGet, link)
	code, body = alice.do(http.MethodPost, link)
	has(t, code, body, http.StatusForbidden, "alice started this release, so someone else must continue it")
	carol := w.browser(carolID)
	carol.do(http.MethodGet, link)
	code, body = carol.do(http.MethodPost, link)
	has(t, code, body, http.StatusForbidden, "You may not continue this release", "prod needs Maintainer")
	// bob signs in, then GitLab blocks him: his session lives on, his role does not.
	bob := w.browser(bobID)
	bob.do(http.MethodGet, link)
	w.gitlab.SetUser(fakegitlab.User{ID: bobID, Username: "bob", State: "blocked"})
	code, body = bob.do(http.MethodPost, link)
	has(t, code, body, http.StatusForbidden, "bob is not a member of group/web")
	if in := w.intents(); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
}

// The attack that worked before sign-in: any client sent X-Forwarded-User
// naming a maintainer and acted as them. With sign-in the header is
// nobody: a GET goes to GitLab to sign in, a POST acts for no one.
func TestForgedProxyHeaderIsNobodyWithSignIn(t *testing.T) {
	w := newWebRig(t, 1)
	link := w.link(release.IntentAbort, 1)
	mallory := w.browser(0)
	code, body := mallory.do(http.MethodPost, link, "X-Forwarded-User", "bob", "X-Forwarded-Email", "bob@corp.example")
	has(t, code, body, http.StatusUnauthorized, "cannot tell who you are")
	noFollow := *mallory.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+link, nil)
	req.Header.Set("X-Forwarded-User", "bob")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/oauth/authorize" {
		t.Errorf("GET with a forged header: %d to %v, want GitLab's sign-in", resp.StatusCode, loc)
	}
	if in := w.intents(); len(in) != 0 {
		t.Errorf("a forged header acted: %+v", in)
	}
}

// approvals: 2 wants two different people. Two names forged in a header
// from outside the proxy counted as two before; now neither counts, while
// two people signed in with GitLab do.
func TestApprovalsNeedTwoRealPeople(t *testing.T) {
	forged := newRig(t, func(o *HandlerOptions) {
		o.Identity = signin.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}} // not where the requests come from
	})
	forged.ops.Authz = approvalsOf{func(context.Context, ops.Actor, release.Release, release.IntentKind) error { return nil }}
	link := forged.link(release.IntentContinue, 1)
	for _, name := range []string{"alice", "bob"} {
		expect(t, forged.do(http.MethodPost, link, name), http.StatusUnauthorized, "cannot tell who you are")
	}
	r, err := forged.engine.Get(t.Context(), forged.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.History {
		if e.Kind == release.EntryApproval || e.Kind == release.EntryIntent {
			t.Errorf("a forged name was counted: %+v", e)
		}
	}
	if len(r.Intents) != 0 {
		t.Errorf("forged names recorded %+v", r.Intents)
	}

	w := newWebRig(t, 2)
	link = w.link(release.IntentContinue, 1)
	bob := w.browser(bobID)
	bob.do(http.MethodGet, link)
	code, body := bob.do(http.MethodPost, link)
	has(t, code, body, http.StatusAccepted, "1 of 2 approvals to continue on prod (bob)")
	code, body = bob.do(http.MethodPost, link)
	has(t, code, body, http.StatusAccepted, "1 of 2 approvals") // the same person twice is one approval
	carol := w.browser(carolID)
	carol.do(http.MethodGet, link)
	code, body = carol.do(http.MethodPost, link)
	has(t, code, body, http.StatusForbidden, "prod needs Maintainer")
	if in := w.intents(); len(in) != 0 {
		t.Fatalf("recorded with one approval: %+v", in)
	}
	dave := w.browser(daveID)
	dave.do(http.MethodGet, link)
	code, body = dave.do(http.MethodPost, link)
	has(t, code, body, http.StatusOK, "Recorded: continue, by dave")
	if in := w.intents(); len(in) != 1 || in[0].Actor != "dave" {
		t.Errorf("intents %+v, want dave's continue", in)
	}
}

package dingtalk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// authorizeFunc is a hand-written Authorizer.
type authorizeFunc func(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error

func (f authorizeFunc) Authorize(ctx context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error {
	return f(ctx, a, r, kind)
}

var _ ops.Authorizer = authorizeFunc(nil)

// rig is a real store and release engine behind the confirmation pages.
type rig struct {
	t        *testing.T
	clock    *fakeclock.Clock
	engine   *release.Stepper
	tokens   *Tokens
	echo     *echo.Echo
	id       string
	recorded []string
	ops      *ops.Service // the door the pages act through; tests may swap its Authz
	st       *store.Store
}

// proxyNet holds the address httptest.NewRequest comes from: the rig's
// requests come through a trusted proxy unless a test says otherwise.
var proxyNet = netip.MustParsePrefix("192.0.2.0/24")

// newRig stores a canary release of web in prod and moves it to where the
// engine leaves it after stage 1/3 (10 %) with continue: manual: paused,
// waiting to start stage 2/3. Only alice may act on it. People are named by
// a proxy at proxyNet, unless opts set another Identity.
func newRig(t *testing.T, opts ...func(*HandlerOptions)) *rig {
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := fakeclock.New(t0)
	engine, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: clock, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	spec := testRelease("", "web")
	spec.Phase = ""
	r, err := engine.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	err = st.UpdateRelease(r.ID, func(raw []byte) ([]byte, error) {
		var s release.Release
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		s.Phase, s.Stage, s.Percent = release.Paused, 1, 10
		s.History = append(s.History, release.Entry{At: t0, Actor: release.EngineActor, Kind: release.EntryTransition,
			Phase: release.Paused, Stage: 1, Message: "Verifying → Paused: stage 1/3 done; waiting for approval"})
		return json.Marshal(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	tokens := testTokens(t, &now)
	tokens.Now = clock.Now
	svc := &ops.Service{Releases: engine, Log: quietLog(), Authz: authorizeFunc(func(_ context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error {
		if a.Username != "alice" {
			return fmt.Errorf("%w: %s is not a maintainer of %s", ops.ErrForbidden, a.Username, r.Project)
		}
		return nil
	})}
	g := &rig{t: t, clock: clock, engine: engine, tokens: tokens, echo: echo.New(), id: r.ID, ops: svc, st: st}
	o := HandlerOptions{Tokens: tokens, Ops: svc, Releases: engine, Notes: st,
		Identity: signin.Proxy{Trusted: []netip.Prefix{proxyNet}}, PublicURL: "https://shipbot.example", Now: clock.Now, Log: quietLog(),
		Recorded: func(id string) { g.recorded = append(g.recorded, id) }}
	for _, opt := range opts {
		opt(&o)
	}
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(g.echo)
	return g
}

func (g *rig) link(kind release.IntentKind, stage int) string {
	tok, err := g.tokens.Issue(Action{Release: g.id, Kind: kind, Stage: stage})
	if err != nil {
		g.t.Fatal(err)
	}
	return ActionsPath + tok
}

// do sends a request as user (none when empty) from shipbot's own page.
func (g *rig) do(method, path, user string, header ...string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"comment": {"looks good"}}.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if method == http.MethodPost {
		req.Header.Set("Origin", "https://shipbot.example")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if user != "" {
		req.Header.Set("X-Forwarded-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	g.echo.ServeHTTP(w, req)
	return w
}

func (g *rig) intents() []release.Intent {
	r, err := g.engine.Get(g.t.Context(), g.id)
	if err != nil {
		g.t.Fatal(err)
	}
	return r.Intents
}

func expect(t *testing.T, w *httptest.ResponseRecorder, code int, says ...string) {
	t.Helper()
	if w.Code != code {
		t.Errorf("status %d, want %d: %s", w.Code, code, w.Body)
	}
	for _, s := range says {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("page lacks %q: %s", s, w.Body)
		}
	}
}

func TestConfirmPageNeverActs(t *testing.T) {
	g := newRig(t)
	link := g.link(release.IntentContinue, 1)
	for range 3 { // link previews, scanners, the person
		w := g.do(http.MethodGet, link, "alice")
		expect(t, w, http.StatusOK, "Continue web v1 → v2 in prod?", "2/3 · 10 %", "Acting as <strong>alice</strong>", `<form method="post">`)
		if w.Header().Get("Referrer-Policy") != "no-referrer" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("headers %v", w.Header())
		}
	}
	w := g.do(http.MethodGet, link, "")
	expect(t, w, http.StatusUnauthorized, "cannot tell who you are")
	if strings.Contains(w.Body.String(), "<form") {
		t.Error("form offered without an identity")
	}
	if in := g.intents(); len(in) != 0 {
		t.Errorf("GET recorded %+v", in)
	}
}

func TestConfirmedActionIsRecordedOnce(t *testing.T) {
	g := newRig(t)
	link := g.link(release.IntentContinue, 1)
	expect(t, g.do(http.MethodPost, link, "alice"), http.StatusOK, "Recorded: continue, by alice")
	in := g.intents()
	if len(in) != 1 || in[0].Kind != release.IntentContinue || in[0].Actor != "alice" ||
		in[0].Surface != release.SurfaceDingTalk || in[0].Comment != "looks good" || !in[0].At.Equal(t0) {
		t.Fatalf("intents %+v", in)
	}
	expect(t, g.do(http.MethodPost, link, "alice"), http.StatusConflict, "This link was already used", "alice used it at 2026-03-01 12:00:00 UTC")
	expect(t, g.do(http.MethodGet, link, "alice"), http.StatusConflict, "This link was already used")
	if in := g.intents(); len(in) != 1 {
		t.Errorf("second POST recorded: %+v", in)
	}
	if len(g.recorded) != 1 || g.recorded[0] != g.id {
		t.Errorf("Recorded called for %v", g.recorded)
	}
}

func TestBadLinksAreRejected(t *testing.T) {
	g := newRig(t)
	link := g.link(release.IntentContinue, 1)
	tampered := link[:len(link)-3] + "AAA"
	if tampered == link {
		tampered = link[:len(link)-3] + "BBB"
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		expect(t, g.do(m, tampered, "alice"), http.StatusForbidden, "This link is not valid")
	}
	g.clock.Advance(DefaultLinkTTL)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		expect(t, g.do(m, link, "alice"), http.StatusGone, "This link has expired", "Continue links work for 30m0s")
	}
	if in := g.intents(); len(in) != 0 {
		t.Errorf("bad links recorded %+v", in)
	}
}

func TestRefusalIsShownAndNotRecorded(t *testing.T) {
	g := newRig(t)
	link := g.link(release.IntentRollback, 1)
	expect(t, g.do(http.MethodPost, link, "bob"), http.StatusForbidden, "You may not roll back this release", "bob is not a maintainer of group/web", "Nothing was recorded")
	if in := g.intents(); len(in) != 0 {
		t.Fatalf("refused action recorded %+v", in)
	}
	// The refusal did not use the link up.
	expect(t, g.do(http.MethodPost, link, "alice"), http.StatusOK, "Recorded: roll back, by alice")
}

// approvalsOf wants two people to continue or promote; anyone may approve.
type approvalsOf struct{ authorizeFunc }

func (approvalsOf) ApprovalRule(release.Release, release.IntentKind) ops.ApprovalRule {
	return ops.ApprovalRule{Need: 2, Role: "Maintainer"}
}

func TestApprovalIsCountedAndTheLinkStaysUsable(t *testing.T) {
	g := newRig(t)
	g.ops.Authz = approvalsOf{func(context.Context, ops.Actor, release.Release, release.IntentKind) error { return nil }}
	link := g.link(release.IntentContinue, 1)
	expect(t, g.do(http.MethodPost, link, "alice"), http.StatusAccepted, "Your approval to continue this release is counted",
		"1 of 2 approvals to continue on prod (alice); waiting for another Maintainer", "kept in the release&#39;s history")
	if in := g.intents(); len(in) != 0 {
		t.Fatalf("one approval recorded %+v", in)
	}
	// The same link serves the next approver, whose approval completes the count.
	expect(t, g.do(http.MethodPost, link, "bob"), http.StatusOK, "Recorded: continue, by bob")
	if in := g.intents(); len(in) != 1 || in[0].Actor != "bob" {
		t.Errorf("intents %+v, want bob's continue", in)
	}
}

func TestCrossSiteAndAnonymousPostsAreRefused(t *testing.T) {
	g := newRig(t)
	link := g.link(release.IntentAbort, 1)
	expect(t, g.do(http.MethodPost, link, "alice", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden, "shipbot&#39;s own page")
	expect(t, g.do(http.MethodPost, link, "alice", "Sec-Fetch-Site", "", "Origin", "https://evil.example"), http.StatusForbidden)
	expect(t, g.do(http.MethodPost, link, ""), http.StatusUnauthorized, "cannot tell who you are")
	if in := g.intents(); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
}

func TestStaleAndImpossibleActionsConflict(t *testing.T) {
	g := newRig(t)
	stale := g.link(release.IntentContinue, 0) // from the message before stage 1 ran
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		expect(t, g.do(m, stale, "alice"), http.StatusConflict, "moved on from stage 1/3")
	}
	pause := g.link(release.IntentPause, 1) // it is already paused
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		expect(t, g.do(m, pause, "alice"), http.StatusConflict, "already paused")
	}
	if in := g.intents(); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
}

func TestUnknownReleaseIsNotFound(t *testing.T) {
	g := newRig(t)
	tok, _ := g.tokens.Issue(Action{Release: "r000000000099", Kind: release.IntentAbort})
	expect(t, g.do(http.MethodGet, ActionsPath+tok, "alice"), http.StatusNotFound, "does not exist")
}

// identitiesFunc is a hand-written Identities.
type identitiesFunc func(ctx context.Context, id authz.Identity) (ops.Actor, error)

func (f identitiesFunc) Resolve(ctx context.Context, id authz.Identity) (ops.Actor, error) {
	return f(ctx, id)
}

var _ Identities = identitiesFunc(nil)

func TestProxyIdentitiesAreResolved(t *testing.T) {
	g := newRig(t, func(o *HandlerOptions) {
		o.Identity = signin.Proxy{UserHeader: "X-Auth-Request-Preferred-Username", EmailHeader: "X-Auth-Request-Email", Trusted: []netip.Prefix{proxyNet}}
		o.Identities = identitiesFunc(func(_ context.Context, id authz.Identity) (ops.Actor, error) {
			switch {
			case id.Surface != release.SurfaceDingTalk:
				return ops.Actor{}, fmt.Errorf("surface %q", id.Surface)
			case id.Email == "alice@corp.example":
				return ops.Actor{Username: "alice", UserID: 7, Surface: id.Surface}, nil
			}
			return ops.Actor{}, &authz.NotMappedError{Identity: id, Reason: id.Email + " is not linked to a GitLab user"}
		})
	})
	link := g.link(release.IntentAbort, 1)
	expect(t, g.do(http.MethodPost, link, "", "X-Auth-Request-Email", "mallory@corp.example"), http.StatusForbidden,
		"mallory@corp.example is not linked to a GitLab user", "email: mallory@corp.example")
	expect(t, g.do(http.MethodPost, link, "", "X-Auth-Request-Email", "alice@corp.example"), http.StatusOK, "Recorded: abort, by alice")
	if in := g.intents(); len(in) != 1 || in[0].Actor != "alice" {
		t.Errorf("intents %+v", in)
	}
}

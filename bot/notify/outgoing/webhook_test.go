package outgoing

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const secret = "whsec-test"

// received is one request as the receiver saw it.
type received struct {
	header http.Header
	body   []byte
	event  Event
	err    error // from the receiver's own verification
}

// receiver verifies deliveries the way docs/EVENTS.md tells receivers to,
// without this package's code, and answers with the next status in line.
type receiver struct {
	*httptest.Server
	now func() time.Time

	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	got     []received
}

func newReceiver(t *testing.T, now func() time.Time, answers ...func(w http.ResponseWriter)) *receiver {
	r := &receiver{now: now, answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (rc *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	got := received{header: req.Header.Clone(), body: body, err: verifyAsDocumented(req.Header, body, rc.now())}
	if got.err == nil {
		got.err = json.Unmarshal(body, &got.event)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, got)
	answer := func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
	if len(rc.answers) > 0 {
		answer, rc.answers = rc.answers[0], rc.answers[1:]
	}
	rc.mu.Unlock()
	answer(w)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// verifyAsDocumented is docs/EVENTS.md's recipe: HMAC-SHA256 over
// "<timestamp>.<delivery>.<body>", hex, compared in constant time, and a
// timestamp at most five minutes from now.
func verifyAsDocumented(h http.Header, body []byte, now time.Time) error {
	ts, id := h.Get("X-Shipbot-Timestamp"), h.Get("X-Shipbot-Delivery")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + id + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(h.Get("X-Shipbot-Signature"))) {
		return errors.New("signature mismatch")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return errors.New("stale timestamp")
	}
	return nil
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

// rig is a notifier whose clock and sleeps are fake: a sleep moves the clock.
type rig struct {
	n      *Notifier
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newRig(t *testing.T, url string, edit func(*Options)) *rig {
	g := &rig{now: t0}
	o := Options{
		Name: "test", URL: url, Secret: secret, Now: g.clock, Jitter: func() float64 { return 0 },
		Sleep: func(_ context.Context, d time.Duration) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.sleeps = append(g.sleeps, d)
			g.now = g.now.Add(d)
			return nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&o)
	}
	n, err := NewNotifier(o)
	if err != nil {
		t.Fatal(err)
	}
	g.n = n
	return g
}

func (g *rig) clock() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

// deliverAll delivers what is queued, as Run would, without a goroutine.
func (g *rig) deliverAll(ctx context.Context) {
	for {
		select {
		case d := <-g.n.queue:
			g.n.deliver(ctx, d)
		default:
			return
		}
	}
}

func pausedEvent() release.Event {
	r := release.Release{
		ID: "r000000000007", App: "web", Project: "group/web", Environment: "prod", Cluster: "c1", Namespace: "web",
		From: release.Revision{Name: "v1", Image: "web:1"}, To: release.Revision{Name: "v2", Image: "registry/web:2", SHA: "abc123", Ref: "v2.0.0"},
		Stages: []release.Stage{{Target: 10}, {Target: 50}, {Target: 100}}, Stage: 1, Percent: 10, Phase: release.Paused,
		TriggeredBy: "alice", PipelineID: 42, WebURL: "https://gitlab.example/group/web/-/pipelines/42",
		History: []release.Entry{
			{At: t0, Actor: "bob", Surface: release.SurfaceDingTalk, Kind: release.EntryTransition, Phase: release.Paused, Stage: 1, Message: "Progressing → Paused: pause by bob via dingtalk"},
			{At: t0, Actor: release.EngineActor, Kind: release.EntryEvent, Phase: release.Paused, Stage: 1, Message: "Paused: paused by bob via dingtalk"},
		},
	}
	return release.Event{Reason: release.ReasonPaused, Release: r, Summary: "stage 2/3 · 10 % · paused by bob 0s", Message: "paused by bob via dingtalk", At: t0}
}

func previewEvent() deployer.Event {
	d := store.Deployment{ID: "d000000000003", App: "web", Project: "group/web", ProjectID: 12, Environment: "review", Cluster: "c1",
		Namespace: "web-mr-7", Ref: "feature-x", SHA: "def456", Image: "registry/web:def456", PipelineID: 77, User: "carol", Status: store.StatusSucceeded}
	p := store.Preview{Key: "12!7", ProjectID: 12, Project: "group/web", IID: 7, Title: "Add search", SourceBranch: "feature-x", HeadSHA: "def456",
		WebURL: "https://gitlab.example/group/web/-/merge_requests/7", Cluster: "c1", Namespace: "web-mr-7", Status: store.PreviewReady,
		URL: "https://web-mr-7.preview.example", User: "carol"}
	return deployer.Event{Reason: deployer.ReasonPreviewReady, Deployment: d, Preview: &p}
}

func TestDeliveriesAreSignedAndFollowTheSchema(t *testing.T) {
	var g *rig
	rc := newReceiver(t, func() time.Time { return g.clock() })
	g = newRig(t, rc.URL, nil)
	ctx := t.Context()
	g.n.Releases().Notify(ctx, pausedEvent())
	g.n.Deploys().Notify(ctx, previewEvent())
	g.n.Deploys().Notify(ctx, deployer.Event{Reason: deployer.ReasonDeployFailed, Message: "image pull failed",
		Deployment: store.Deployment{ID: "d000000000004", App: "api", Environment: "dev", Image: "api:1", User: "dave", Status: store.StatusFailed}})
	g.deliverAll(ctx)

	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d deliveries", len(got))
	}
	ids := map[string]bool{}
	for i, r := range got {
		if r.err != nil {
			t.Errorf("delivery %d: %v", i, r.err)
		}
		if err := Verify(secret, r.header, r.body, g.clock(), 5*time.Minute); err != nil {
			t.Errorf("delivery %d: Verify: %v", i, err)
		}
		ids[r.header.Get(HeaderDelivery)] = true
		if r.event.Schema != "shipbot.event/v1" || r.header.Get(HeaderEvent) != r.event.Type+"."+r.event.Reason {
			t.Errorf("delivery %d: schema %q, event header %q", i, r.event.Schema, r.header.Get(HeaderEvent))
		}
	}
	if len(ids) != 3 {
		t.Errorf("delivery ids are not unique: %v", ids)
	}
	if e := got[0].event; e.Type != "release" || e.Actor != "bob" || *e.Stage != 2 || *e.Stages != 3 || *e.Percent != 10 || e.Phase != "Paused" {
		t.Errorf("release event %+v", e)
	}
	if e := got[1].event; e.Type != "preview" || e.ID != "12!7" || e.Deployment != "d000000000003" || e.MR == nil || e.MR.IID != 7 || e.URL == "" {
		t.Errorf("preview event %+v", e)
	}
	if e := got[2].event; e.Type != "deploy" || e.Reason != "DeployFailed" || e.Phase != "failed" || e.Actor != "dave" || e.Percent != nil {
		t.Errorf("deploy event %+v", e)
	}
	if s := g.n.Stats(); s.Delivered != 3 {
		t.Errorf("stats %+v", s)
	}
	tampered := got[0].header.Clone()
	if err := Verify(secret, tampered, append([]byte(" "), got[0].body...), g.clock(), 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify of a changed body: %v", err)
	}
	if err := Verify(secret, got[0].header, got[0].body, g.clock().Add(6*time.Minute), 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify of an old delivery: %v", err)
	}
}

func TestRetriesOn503ThenSucceeds(t *testing.T) {
	var g *rig
	rc := newReceiver(t, func() time.Time { return g.clock() }, status(503), status(502), status(200))
	g = newRig(t, rc.URL, nil)
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d attempts, want 3", len(got))
	}
	for i, r := range got {
		if r.err != nil || r.header.Get(HeaderAttempt) != strconv.Itoa(i+1) || r.header.Get(HeaderDelivery) != got[0].header.Get(HeaderDelivery) {
			t.Errorf("attempt %d: %v, headers %v", i+1, r.err, r.header)
		}
	}
	// Jitter 0 takes the random half off: 1s and 2s become 500ms and 1s.
	if want := []time.Duration{500 * time.Millisecond, time.Second}; !equal(g.sleeps, want) {
		t.Errorf("slept %v, want %v", g.sleeps, want)
	}
	if s := g.n.Stats(); s.Delivered != 1 || s.GaveUp != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	rc := newReceiver(t, time.Now, status(400), status(200))
	g := newRig(t, rc.URL, nil)
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	if n := len(rc.requests()); n != 1 || len(g.sleeps) != 0 {
		t.Errorf("%d attempts, slept %v", n, g.sleeps)
	}
	if s := g.n.Stats(); s.Rejected != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var g *rig
	rc := newReceiver(t, func() time.Time { return g.clock() },
		status(429, "Retry-After", "7"),
		status(503, "Retry-After", t0.Add(7*time.Second+30*time.Second).Format(http.TimeFormat)),
		status(200))
	g = newRig(t, rc.URL, nil)
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	if want := []time.Duration{7 * time.Second, 30 * time.Second}; !equal(g.sleeps, want) {
		t.Errorf("slept %v, want %v", g.sleeps, want)
	}
	if s := g.n.Stats(); s.Delivered != 1 {
		t.Errorf("stats %+v", s)
	}

	rc2 := newReceiver(t, time.Now, status(503, "Retry-After", "86400"))
	g2 := newRig(t, rc2.URL, nil)
	g2.n.NotifyRelease(t.Context(), pausedEvent())
	g2.deliverAll(t.Context())
	if s := g2.n.Stats(); s.GaveUp != 1 || len(g2.sleeps) != 0 {
		t.Errorf("a day's Retry-After: stats %+v, slept %v", s, g2.sleeps)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, time.Now, status(500), status(500), status(500), status(200))
	g := newRig(t, rc.URL, func(o *Options) { o.MaxAttempts = 3 })
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if s := g.n.Stats(); s.GaveUp != 1 || s.Delivered != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	g := newRig(t, "http://127.0.0.1:1/hook?token=secret-in-url", func(o *Options) { o.MaxAttempts = 2 })
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	if s := g.n.Stats(); s.GaveUp != 1 || len(g.sleeps) != 1 {
		t.Errorf("stats %+v, slept %v", s, g.sleeps)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	g := newRig(t, "https://hooks.example/x", func(o *Options) { o.QueueSize = 2 })
	start := time.Now()
	for range 5 {
		g.n.NotifyRelease(t.Context(), pausedEvent())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Notify blocked for %s", d)
	}
	if s := g.n.Stats(); s.Dropped != 3 || len(g.n.queue) != 2 {
		t.Errorf("stats %+v, queued %d", s, len(g.n.queue))
	}
}

func TestEventFilter(t *testing.T) {
	g := newRig(t, "https://hooks.example/x", func(o *Options) { o.Events = []string{"release.Succeeded", "preview.*", "DeployFailed"} })
	ctx := t.Context()
	g.n.NotifyRelease(ctx, pausedEvent())
	g.n.NotifyDeploy(ctx, previewEvent())
	g.n.NotifyDeploy(ctx, deployer.Event{Reason: deployer.ReasonDeployStarted})
	g.n.NotifyDeploy(ctx, deployer.Event{Reason: deployer.ReasonDeployFailed})
	var got []string
	for len(g.n.queue) > 0 {
		got = append(got, (<-g.n.queue).event)
	}
	if strings.Join(got, " ") != "preview.PreviewReady deploy.DeployFailed" {
		t.Errorf("filter passed %v", got)
	}
	for _, bad := range []string{"releases.*", "release.", "*.Paused", "Pau*", ""} {
		if _, err := NewNotifier(Options{URL: "https://x", Secret: "s", Events: []string{bad}}); !errors.Is(err, release.ErrInvalid) {
			t.Errorf("filter %q: %v", bad, err)
		}
	}
}

func TestRunDeliversUntilCancelled(t *testing.T) {
	rc := newReceiver(t, time.Now)
	n, err := NewNotifier(Options{URL: rc.URL, Secret: secret, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	n.NotifyRelease(ctx, pausedEvent())
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Delivered == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || n.Stats().Delivered != 1 {
		t.Errorf("Run: %v, stats %+v", err, n.Stats())
	}
}

// TestSchemaGolden pins the JSON receivers parse; docs/EVENTS.md shows it.
func TestSchemaGolden(t *testing.T) {
	for name, e := range map[string]Event{
		"release-paused": FromRelease(pausedEvent()),
		"preview-ready":  FromDeployer(previewEvent(), t0),
	} {
		got, _ := json.MarshalIndent(e, "", "  ")
		got = append(got, '\n')
		path := filepath.Join("testdata", name+".golden.json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, path, got)
		}
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetryAfterBeyondADurationIsTooLong(t *testing.T) {
	for _, v := range []string{"9223372037", "18446744074"} { // 18446744074 s wraps to 0.29 s
		if got := retryAfter(v, t0); got != math.MaxInt64 {
			t.Errorf("Retry-After %s = %s, want the longest wait", v, got)
		}
	}
	rc := newReceiver(t, time.Now, status(503, "Retry-After", "18446744074"))
	g := newRig(t, rc.URL, nil)
	g.n.NotifyRelease(t.Context(), pausedEvent())
	g.deliverAll(t.Context())
	if s := g.n.Stats(); s.GaveUp != 1 || len(g.sleeps) != 0 {
		t.Errorf("a Retry-After of centuries: stats %+v, slept %v; want given up at once", s, g.sleeps)
	}
}

// A release event the engine sends again (its outbox after a restart) is
// delivered under the same X-Shipbot-Delivery, which receivers dedupe on.
func TestARepeatedReleaseEventKeepsItsDeliveryID(t *testing.T) {
	var g *rig
	rc := newReceiver(t, func() time.Time { return g.clock() })
	g = newRig(t, rc.URL, nil)
	ctx := t.Context()
	e := pausedEvent()
	e.ID = "e000000000042"
	g.n.Releases().Notify(ctx, e)
	g.n.Releases().Notify(ctx, e)
	g.deliverAll(ctx)
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	for i, r := range got {
		if id := r.header.Get(HeaderDelivery); id != e.ID {
			t.Errorf("delivery %d: %s %q, want the event's id %q", i, HeaderDelivery, id, e.ID)
		}
	}
}

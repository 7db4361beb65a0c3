package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fixtures"
)

const secret = "hook-secret"

type rig struct {
	srv   *httptest.Server
	store *store.Store
	h     *intake.Handler
	woken int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{store: st}
	r.h = intake.NewHandler(intake.Handler{Secret: secret, MaxBody: 64 << 10, Inbox: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, prometheus.NewRegistry())
	r.h.Accepted = func() { r.woken++ }
	e := echo.New()
	r.h.Register(e)
	r.srv = httptest.NewServer(e)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) post(t *testing.T, event string, body []byte, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+intake.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", secret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (r *rig) pending(t *testing.T) []store.Delivery {
	t.Helper()
	p, err := r.store.Pending(100)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pipeline(t *testing.T) []byte {
	return fixtures.PipelineSuccess(t, fixtures.Build{Project: "shop/web", Ref: "dev", SHA: strings.Repeat("a", 40), PipelineID: 7})
}

func TestAcceptStoresAndDedupes(t *testing.T) {
	r := newRig(t)
	body := pipeline(t)
	code, out := r.post(t, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "u-1")
	if code != http.StatusOK || out["status"] != "accepted" {
		t.Fatalf("first delivery: %d %v", code, out)
	}
	code, out = r.post(t, "Pipeline Hook", body, "X-Gitlab-Event-UUID", "u-1")
	if code != http.StatusOK || out["status"] != "duplicate" {
		t.Fatalf("redelivery: %d %v", code, out)
	}
	// Idempotency-Key wins over the UUID: same key, other UUID, still a duplicate.
	r.post(t, "Pipeline Hook", body, "Idempotency-Key", "k-1", "X-Gitlab-Event-UUID", "u-2")
	code, out = r.post(t, "Pipeline Hook", body, "Idempotency-Key", "k-1", "X-Gitlab-Event-UUID", "u-3")
	if out["status"] != "duplicate" {
		t.Fatalf("same Idempotency-Key: %d %v", code, out)
	}
	// Without either header the body itself is the key.
	r.post(t, "Pipeline Hook", body)
	_, out = r.post(t, "Pipeline Hook", body)
	if out["status"] != "duplicate" {
		t.Fatalf("same body, no keys: %v", out)
	}
	p := r.pending(t)
	if len(p) != 3 || r.woken != 3 {
		t.Fatalf("inbox has %d items, worker woken %d times; want 3 and 3", len(p), r.woken)
	}
	if !bytes.Equal(p[0].Body, body) || p[0].Event != "Pipeline Hook" {
		t.Errorf("stored delivery differs from what was sent")
	}
	if got := r.store.InboxDepth(); got != 3 {
		t.Errorf("inbox depth = %d", got)
	}
}

func TestRejections(t *testing.T) {
	cases := []struct {
		name    string
		event   string
		body    []byte
		headers []string
		code    int
	}{
		{"wrong token", "Pipeline Hook", nil, []string{"X-Gitlab-Token", "guess"}, http.StatusUnauthorized},
		{"missing token", "Pipeline Hook", nil, []string{"X-Gitlab-Token", ""}, http.StatusUnauthorized},
		{"malformed json", "Pipeline Hook", []byte(`{"object_kind": "pipeline", `), nil, http.StatusBadRequest},
		{"wrong shape", "Push Hook", []byte(`{"object_kind": "push", "ref": 42}`), nil, http.StatusBadRequest},
		{"too large", "Pipeline Hook", bytes.Repeat([]byte(" "), 65<<10), nil, http.StatusRequestEntityTooLarge},
		{"unknown event", "Wiki Page Hook", []byte(`{"object_kind":"wiki_page"}`), nil, http.StatusAccepted},
		{"issue note", "Note Hook", fixtures.Marshal(t, fixtures.Load(t, "note_issue.json")), nil, http.StatusAccepted},
		{"design note", "Note Hook", noteOn(t, "DesignManagement::Design"), nil, http.StatusAccepted},
		{"note on nothing", "Note Hook", noteOn(t, ""), nil, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			body := c.body
			if body == nil {
				body = pipeline(t)
			}
			code, out := r.post(t, c.event, body, c.headers...)
			if code != c.code {
				t.Fatalf("status %d (%v), want %d", code, out, c.code)
			}
			if p := r.pending(t); len(p) != 0 {
				t.Errorf("%d deliveries stored, want none", len(p))
			}
			if s, _ := out["error"].(string); strings.Contains(s, "guess") {
				t.Errorf("reply echoes the token: %q", s)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := intake.NewHandler(intake.Handler{Secret: secret, MaxBody: 1 << 20, Inbox: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, reg)
	e := echo.New()
	h.Register(e)
	for _, tok := range []string{secret, secret, "bad"} {
		req := httptest.NewRequest(http.MethodPost, intake.Path, bytes.NewReader(pipeline(t)))
		req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
		req.Header.Set("X-Gitlab-Token", tok)
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := `
# HELP shipbot_webhooks_total GitLab webhook deliveries by event and result (accepted, duplicate, ignored, rejected_*).
# TYPE shipbot_webhooks_total counter
shipbot_webhooks_total{event="Pipeline Hook",result="accepted"} 1
shipbot_webhooks_total{event="Pipeline Hook",result="duplicate"} 1
shipbot_webhooks_total{event="Pipeline Hook",result="rejected_token"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shipbot_webhooks_total"); err != nil {
		t.Error(err)
	}
}

// inboxFunc is an Inbox made of a function.
type inboxFunc func(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)

func (f inboxFunc) Accept(ctx context.Context, d store.Delivery) (store.Delivery, bool, error) {
	return f(ctx, d)
}

var _ intake.Inbox = inboxFunc(nil)

// A store that cannot be reached now gets the sender to try again later
// (503, Retry-After); any other failure is the server's own (500).
func TestAStoreUnavailableAsksToTryAgain(t *testing.T) {
	for _, c := range []struct {
		err   error
		code  int
		retry string
	}{
		{fmt.Errorf("store delivery: %w: dial tcp: connection refused", store.ErrUnavailable), http.StatusServiceUnavailable, "5"},
		{errors.New("disk full"), http.StatusInternalServerError, ""},
	} {
		h := intake.NewHandler(intake.Handler{Secret: secret, MaxBody: 1 << 20, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Inbox: inboxFunc(func(context.Context, store.Delivery) (store.Delivery, bool, error) {
				return store.Delivery{}, false, c.err
			})},
			prometheus.NewRegistry())
		e := echo.New()
		h.Register(e)
		req := httptest.NewRequest(http.MethodPost, intake.Path, bytes.NewReader(pipeline(t)))
		req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
		req.Header.Set("X-Gitlab-Token", secret)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != c.code || rec.Header().Get("Retry-After") != c.retry {
			t.Errorf("%v: answered %d, Retry-After %q; want %d, %q", c.err, rec.Code, rec.Header().Get("Retry-After"), c.code, c.retry)
		}
		if strings.Contains(rec.Body.String(), "connection refused") || strings.Contains(rec.Body.String(), "disk") {
			t.Errorf("the answer shows the internal error: %s", rec.Body)
		}
	}
}

// noteOn is the client's merge request comment example, said to be on a
// noteable of the given type.
func noteOn(t *testing.T, noteableType string) []byte {
	t.Helper()
	note := fixtures.Load(t, "note_merge_request.json")
	note["object_attributes"].(map[string]any)["noteable_type"] = noteableType
	return fixtures.Marshal(t, note)
}

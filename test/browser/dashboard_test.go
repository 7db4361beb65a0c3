package browser

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/store"
)

// A person opens the dashboard while web's v1.1.0 waits at its second
// canary stage in prod: the matrix shows what runs where, the release's
// row its stage and share, and its page the timeline of who did what.
func TestDashboard(t *testing.T) {
	chromium := requireChromium(t)
	r := newRig(t)

	// dev: web deploys; api's image cannot be pulled.
	r.pipeline(9, "shop/web", "dev", false, 'd', 50, "dora")
	r.pipeline(10, "shop/api", "dev", false, 'e', 51, "eve")
	// prod: v1.0.0 goes straight to 100 %; v1.1.0 pauses after 10 %, and
	// alice continues it to 50 %, where it pauses again.
	r.pipeline(9, "shop/web", "v1.0.0", true, '1', 100, "rel-manager")
	r.waitRelease("v1-0-0", "Succeeded", 1)
	r.pipeline(9, "shop/web", "v1.1.0", true, '2', 101, "rel-manager")
	rel := r.waitRelease("v1-1-0", "Paused", 1)
	if _, err := r.client().Control(t.Context(), rel.ID, api.ActionContinue, api.ControlRequest{Comment: "error rate flat"}); err != nil {
		t.Fatal(err)
	}
	r.waitRelease("v1-1-0", "Paused", 2)
	r.waitDeployment("web", "dev", "succeeded")
	r.waitDeployment("api", "dev", "failed")
	// Previews need GitLab; this one is written to the store as the
	// preview engine would, for the page to show.
	if _, err := r.m.Store().Update(func(tx *store.Tx) error {
		return tx.PutPreview(store.Preview{Key: "9!42", ProjectID: 9, Project: "shop/web", IID: 42, Title: "Faster checkout",
			SourceBranch: "feature-checkout", HeadSHA: strings.Repeat("4", 40), DeployedSHA: strings.Repeat("4", 40),
			WebURL: "https://gitlab.example.com/shop/web/-/merge_requests/42", MRState: "opened", Wanted: true,
			Status: store.PreviewReady, URL: "http://mr-42-web.preview.local", User: "alice", LastActivity: time.Now().Add(-3 * time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, chromium)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1400, 900),
		chromedp.Navigate(r.url("/")),
		chromedp.WaitVisible(chromedp.CSS(`#matrix`)),
	); err != nil {
		t.Fatal(err)
	}
	text := func(css string) string {
		t.Helper()
		// A missing element fails in seconds, not at the test's deadline.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("%s: %v", css, err)
		}
		return s
	}
	has(t, "web × dev", text(`#matrix tr[data-app="web"] td[data-env="dev"]`), "dev", "dddddddd", "succeeded", "by dora")
	has(t, "web × prod", text(`#matrix tr[data-app="web"] td[data-env="prod"]`), "v1-0-0", "11111111", "released", "by rel-manager", "→ v1-1-0 · stage 3/3 · 50 %")
	has(t, "api × dev", text(`#matrix tr[data-app="api"] td[data-env="dev"]`), "eeeeeeee", "failed", "by eve", "ImagePullBackOff")
	has(t, "the in-flight row", text(`#inflight tr[data-release="`+rel.ID+`"]`), rel.ID, "web", "prod", "v1-0-0 → v1-1-0", "Paused", "3/3", "50 %", "stage 3/3 · 50 %")
	has(t, "the previews", text(`#previews`), "shop/web!42", "Faster checkout", "feature-checkout", "ready", "http://mr-42-web.preview.local", "3h")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	savePNG(t, png)

	// The release's page, reached from its row, tells its story.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#inflight tr[data-release="`+rel.ID+`"] a`))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#timeline`))); err != nil {
		t.Fatal(err)
	}
	if phase := text(`#phase`); phase != "Paused" {
		t.Errorf("release page phase %q", phase)
	}
	timeline, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
		`Array.from(document.querySelectorAll('#timeline tbody tr')).map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))`))
	if err != nil {
		t.Fatal(err)
	}
	full, err := r.client().Get(t.Context(), rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(timeline) != len(full.History) {
		t.Fatalf("timeline has %d entries, the release's history %d:\n%s\n%s", len(timeline), len(full.History), jsonOf(timeline), jsonOf(full.History))
	}
	// Columns: time, actor, surface, kind, phase, stage, message.
	for i, e := range full.History {
		got := timeline[i]
		want := []string{e.At.UTC().Format("2006-01-02 15:04:05"), e.Actor, string(e.Surface), string(e.Kind), string(e.Phase)}
		if want[2] == "" {
			want[2] = "-"
		}
		if !slices.Equal(got[:5], want) || got[6] != e.Message {
			t.Errorf("timeline[%d] = %q, want %q … %q", i, got, want, e.Message)
		}
	}
	if first := timeline[0]; first[1] != "shipbot" || !strings.HasPrefix(first[6], "created: canary") {
		t.Errorf("first entry %q, want shipbot creating the canary", first)
	}
	if !slices.ContainsFunc(timeline, func(e []string) bool {
		return e[1] == "alice" && e[2] == "api" && e[3] == "intent" && strings.Contains(e[6], "continue") && strings.Contains(e[6], "error rate flat")
	}) {
		t.Errorf("no entry for alice's continue via the API:\n%s", jsonOf(timeline))
	}
}

func has(t *testing.T, what, text string, parts ...string) {
	t.Helper()
	text = strings.Join(strings.Fields(text), " ")
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Errorf("%s reads %q; want %q in it", what, text, p)
		}
	}
}

// browser starts a headless Chromium for the test.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI containers run as root, where Chromium's sandbox cannot start
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func savePNG(t *testing.T, png []byte) {
	t.Helper()
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	path := screenshotPath(t)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

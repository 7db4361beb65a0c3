package mergerequest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCommentGolden pins what people read on the merge request for each
// state of a preview.
func TestCommentGolden(t *testing.T) {
	base := store.Preview{Key: "7!12", ProjectID: 7, IID: 12, Namespace: "preview-shop-web-mr-12", MRState: "opened",
		HeadSHA: "4f2d9c1e8b7a6d5c4b3a29181716151413121110", Wanted: true}
	cases := map[string]func(p *store.Preview){
		"waiting":   func(p *store.Preview) { p.Status = store.PreviewWaiting },
		"deploying": func(p *store.Preview) { p.Status = store.PreviewDeploying },
		"ready": func(p *store.Preview) {
			p.Status, p.URL, p.DeployedSHA = store.PreviewReady, "https://mr-12-web.preview.example.com", p.HeadSHA
		},
		"failed": func(p *store.Preview) {
			p.Status = store.PreviewFailed
			p.Reason = `deployment preview-shop-web-mr-12/web not available: timed out after 5m0s: pod web-6d4-x2k: ImagePullBackOff: Back-off pulling image "registry.example.com/shop/web:4f2d9c1e"`
		},
		"stopped-merged": func(p *store.Preview) {
			p.Status, p.Wanted, p.StopReason, p.MRState = store.PreviewStopped, false, "merged", "merged"
		},
		"stopped-command": func(p *store.Preview) { p.Status, p.Wanted, p.StopReason = store.PreviewStopped, false, "command" },
		"stopping-ttl":    func(p *store.Preview) { p.Status, p.Wanted, p.StopReason = store.PreviewStopping, false, "ttl" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			p := base
			mutate(&p)
			got := Comment(p)
			path := filepath.Join("testdata", name+".golden.md")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("comment differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

// Failure text from the cluster cannot close its code block and write
// markdown of its own, such as a link, into the comment.
func TestCommentKeepsFailureTextInItsBlock(t *testing.T) {
	reason := "apply: bad\n```\n[click here](https://evil.example) to fix\n````"
	got := Comment(store.Preview{Status: store.PreviewFailed, HeadSHA: strings.Repeat("a", 40), Reason: reason})
	open := strings.Index(got, "`````\n")
	end := strings.LastIndex(got, "\n`````")
	if open < 0 || end <= open || !strings.Contains(got[open:end], "[click here]") {
		t.Errorf("the failure text is not inside a fence longer than its own backtick runs:\n%s", got)
	}
	if after := got[end+len("\n`````"):]; strings.Contains(after, "click here") {
		t.Errorf("text after the block: %q", after)
	}
}

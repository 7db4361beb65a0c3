package releases

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// mrToken is the GitLab token of the merge request comment tests.
const mrToken = "e2e-mr-comment-token"

// The merge request whose merge made v1.1.0's commit, and who comments on it.
const (
	mrProjectID  = int64(9) // the project id tag() sends
	mergedMR     = int64(5)
	maintainerID = int64(801)
	reporterID   = int64(802)
)

// mrGitLab is a fake GitLab where shop/web's MR !5 holds the commit of
// v1.1.0, mia is a Maintainer and rex a Reporter; and a client to it.
func mrGitLab(t *testing.T) (*fakegitlab.Server, *gitlab.Client) {
	t.Helper()
	gl := fakegitlab.New(t, mrToken)
	gl.SetProjectPath(mrProjectID, "shop/web")
	gl.SetUser(fakegitlab.User{ID: maintainerID, Username: "mia"})
	gl.SetUser(fakegitlab.User{ID: reporterID, Username: "rex"})
	gl.SetMember(mrProjectID, maintainerID, int(gitlab.Maintainer))
	gl.SetMember(mrProjectID, reporterID, int(gitlab.Reporter))
	gl.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: mrProjectID, IID: mergedMR, State: "merged",
		SourceBranch: "faster-checkout", HeadSHA: strings.Repeat("2", 40), MergeCommitSHA: strings.Repeat("2", 40)})
	gl.SetCommitMergeRequests(mrProjectID, strings.Repeat("2", 40), mergedMR)
	c, err := gitlab.New(gl.URL(), mrToken, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	return gl, c
}

// comment writes body on MR !5 as user (shipbot reads it back from GitLab
// and awards emoji on it), delivers its Note Hook, and waits for shipbot's reply. It returns
// the reply and the emoji on the comment once the reply is there.
func comment(t *testing.T, addr string, gl *fakegitlab.Server, c *gitlab.Client, userID int64, username, body string) (string, []string) {
	t.Helper()
	noteID := gl.AddNote(mrProjectID, mergedMR, fakegitlab.Note{Body: body, Author: username, AuthorID: userID})
	mr := fixtures.MR{ProjectID: mrProjectID, Project: "shop/web", IID: mergedMR, SourceBranch: "faster-checkout",
		HeadSHA: strings.Repeat("2", 40), UserID: userID, Username: username}
	if code := fixtures.PostWebhook(t, addr, secret, "Note Hook", fixtures.Note(t, mr, noteID, body, "create")); code != http.StatusOK {
		t.Fatalf("note %q: webhook answered %d", body, code)
	}
	var reply string
	var emojis []string
	fixtures.Eventually(t, 30*time.Second, "shipbot's reply to "+body, func() error {
		for _, n := range gl.Notes(mrProjectID, mergedMR) {
			switch {
			case n.ID == noteID:
				emojis = n.Emojis
			case n.ID > noteID && strings.Contains(n.Body, "shipbot:reply"):
				reply = n.Body
			}
		}
		if reply == "" || len(emojis) < 2 {
			return fmt.Errorf("reply %q, emoji %v", reply, emojis)
		}
		return nil
	})
	return reply, emojis
}

// A /rollback comment on the merge request that made v1.1.0 rolls its
// paused canary back, when a Maintainer writes it; a Reporter's is
// refused, changes nothing on the cluster, and is kept in the release's
// history.
func TestMRCommentRollsBack(t *testing.T) {
	r := newRig(t, "prod1")
	gl, client := mrGitLab(t)
	m := r.start(strings.Replace(r.config(canary), "gitlab: {baseURL: http://127.0.0.1:1,",
		fmt.Sprintf("gitlab: {baseURL: %s, token: %s,", gl.URL(), mrToken), 1))
	rs := m.Releases()

	tag(t, m.Addr(), "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	tag(t, m.Addr(), "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})

	// A Reporter may not: the reply says why and the canary stays.
	reply, emojis := comment(t, m.Addr(), gl, client, reporterID, "rex", "/rollback")
	if !strings.Contains(reply, "rex may not roll back release `"+rel.ID+"`") || !strings.Contains(reply, "rex is Reporter on shop/web; prod1 needs Maintainer") {
		t.Errorf("refusal reply: %s", reply)
	}
	if !slices.Equal(emojis, []string{"eyes", "x"}) {
		t.Errorf("emoji on the refused comment: %v", emojis)
	}
	refused, err := rs.Get(context.Background(), rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if refused.Phase != release.Paused || len(refused.Intents) != 0 {
		t.Errorf("after the refusal: %s with intents %+v", refused.Phase, refused.Intents)
	}
	if i := slices.IndexFunc(refused.History, func(e release.Entry) bool { return e.Kind == release.EntryRefusal }); i < 0 {
		t.Errorf("no refusal in the history:\n%s", entries(refused.History))
	} else if e := refused.History[i]; e.Actor != "rex" || e.Surface != release.SurfaceMRComment || e.At.IsZero() ||
		e.Message != "rollback refused: rex is Reporter on shop/web; prod1 needs Maintainer" {
		t.Errorf("refusal entry %+v", e)
	}
	if w, err := r.weights("prod1"); err != nil || !maps.Equal(w, map[string]int32{"v1-0-0": 90, "v1-1-0": 10}) {
		t.Errorf("weights after the refusal: %v, %v", w, err)
	}

	// A Maintainer may: the stable version is back at 100 %.
	reply, emojis = comment(t, m.Addr(), gl, client, maintainerID, "mia", "/rollback")
	if !strings.Contains(reply, "✅ Recorded: rollback of release `"+rel.ID+"` (web `v1-1-0` in prod1 on prod1-cluster), asked by mia") {
		t.Errorf("rollback reply: %s", reply)
	}
	if !slices.Equal(emojis, []string{"eyes", "white_check_mark"}) {
		t.Errorf("emoji on the rollback comment: %v", emojis)
	}
	done := waitRelease(t, rs, "prod1", "v1-1-0", "rolled back", phaseIs(release.RolledBack))
	r.waitWeights("prod1", map[string]int32{"": 100})
	if a, b := r.replicas("prod1", "v1-0-0"), r.replicas("prod1", "v1-1-0"); a != 2 || b != 0 {
		t.Errorf("after the rollback: v1-0-0 %d and v1-1-0 %d replicas, want 2 and 0", a, b)
	}
	if len(done.Intents) != 1 || done.Intents[0].Actor != "mia" || done.Intents[0].Surface != release.SurfaceMRComment ||
		done.Intents[0].Kind != release.IntentRollback || done.Intents[0].Outcome != release.OutcomeApplied {
		t.Errorf("intents %+v", done.Intents)
	}
	byMia := 0
	for _, e := range done.History {
		if e.Actor == "mia" {
			byMia++
			if e.Surface != release.SurfaceMRComment {
				t.Errorf("mia's entry without the surface: %+v", e)
			}
		}
	}
	if byMia < 2 { // the intent, and the transition to RollingBack it caused
		t.Errorf("%d history entries name mia, want the intent and the transition:\n%s", byMia, entries(done.History))
	}
	if !strings.Contains(done.Reason, "rollback by mia via mr-comment") {
		t.Errorf("reason %q", done.Reason)
	}
}

func entries(h []release.Entry) string {
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "  %s %s %s %s: %s\n", e.At.Format(time.TimeOnly), e.Actor, e.Surface, e.Kind, e.Message)
	}
	return b.String()
}

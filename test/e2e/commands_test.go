package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

const (
	reporterID  = 601
	developerID = 602
)

// note posts a comment on the rig's merge request as user id and waits for
// shipbot's reply to it, which it returns.
func (r *previewRig) note(t *testing.T, noteID int64, userID int64, body, action string) string {
	t.Helper()
	mr := r.mr
	mr.UserID, mr.Username = userID, fmt.Sprintf("user%d", userID)
	if action == "create" { // shipbot reads the comment back from GitLab
		r.gl.AddNote(projectID, 12, fakegitlab.Note{ID: noteID, Body: body, Author: mr.Username, AuthorID: userID})
	}
	before := len(r.gl.Notes(projectID, 12))
	mustPost(t, r.m, "Note Hook", fixtures.Note(t, mr, noteID, body, action))
	if action == "update" {
		return ""
	}
	var reply string
	fixtures.Eventually(t, 15*time.Second, "a reply to "+body, func() error {
		notes := r.gl.Notes(projectID, 12)
		for _, n := range notes[min(before, len(notes)):] {
			if strings.Contains(n.Body, "shipbot:reply") {
				reply = n.Body
				return nil
			}
		}
		return fmt.Errorf("no reply among %d notes", len(notes))
	})
	return reply
}

func TestPreviewStopNeedsDeveloper(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.gl.SetMember(projectID, reporterID, 20)
	r.gl.SetMember(projectID, developerID, 30)
	r.open(t)
	r.pipeline(t, 9401)
	r.waitImage(t, ":11111111")
	r.comment(t, "Preview ready")

	// A Reporter is refused, with a reason, and nothing changes.
	reply := r.note(t, 7001, reporterID, "/preview stop", "create")
	if !strings.Contains(reply, "needs at least developer access") || !strings.Contains(reply, "has reporter") {
		t.Errorf("refusal reply: %q", reply)
	}
	time.Sleep(2 * time.Second)
	r.waitImage(t, ":11111111")
	if _, err := kc.Client().CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("the refused command removed the namespace: %v", err)
	}

	// An edited comment is ignored, even from a Developer.
	notes := len(r.gl.Notes(projectID, 12))
	r.note(t, 7002, developerID, "/preview stop", "update")
	time.Sleep(time.Second)
	if _, err := kc.Client().CoreV1().Namespaces().Get(context.Background(), r.ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("an edited comment removed the namespace: %v", err)
	}
	if got := len(r.gl.Notes(projectID, 12)); got != notes {
		t.Errorf("an edited comment got %d replies", got-notes)
	}

	// A Developer's /shipbot prefixed form works.
	reply = r.note(t, 7003, developerID, "/shipbot preview stop", "create")
	if !strings.Contains(reply, "Removing") {
		t.Errorf("stop reply: %q", reply)
	}
	r.waitGone(t)
	r.comment(t, "stopped by `/preview stop`")

	// /preview brings it back.
	reply = r.note(t, 7004, developerID, "/preview", "create")
	if !strings.Contains(reply, "Redeploying") {
		t.Errorf("redeploy reply: %q", reply)
	}
	r.waitImage(t, ":11111111")
}

func TestHelpCommand(t *testing.T) {
	r := newPreviewRig(t, "", nil)
	r.open(t)
	reply := r.note(t, 7101, developerID, "/shipbot promte 50", "create")
	if !strings.Contains(reply, "Did you mean") || !strings.Contains(reply, "/preview") {
		t.Errorf("help reply: %q", reply)
	}
}

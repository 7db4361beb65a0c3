package slack

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// TestClickCountedAsApproval tells the clicker that their approval is kept
// and how many more are needed, not that they were refused.
func TestClickCountedAsApproval(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	e.authz = func(a ops.Actor, kind release.IntentKind) error {
		return &ops.ApprovalError{Release: "r000000000001", Environment: "prod", Kind: kind, Approvers: []string{a.Username}, Need: 2, Role: "Maintainer"}
	}
	r := e.createPaused()
	ts := e.showPaused(r)
	if code, _ := e.post(e.click(alice, ts, "shipbot:continue", r.ID), testSecret, e.now); code != http.StatusOK {
		t.Errorf("status %d, want 200", code)
	}
	e.app.Close()
	want := ":ballot_box_with_check: Your approval to continue release `r000000000001` is kept in its history: 1 of 2 approvals to continue on prod ("
	if eph := e.slack.Ephemerals(); len(eph) != 1 || !strings.HasPrefix(eph[0], want) || !strings.Contains(eph[0], "waiting for another Maintainer") {
		t.Errorf("clicker was told %q, want %q…", eph, want)
	}
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
}

package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

// createAnyWeight is createPaused in an environment with release.anyWeight.
func (e *env) createAnyWeight() release.Release {
	e.t.Helper()
	r := e.createPaused()
	r.AnyWeight = true
	if err := e.st.UpdateRelease(r.ID, func([]byte) ([]byte, error) { return json.Marshal(r) }); err != nil {
		e.t.Fatal(err)
	}
	return e.get(r.ID)
}

// submit is a view_submission payload of the ratio modal with percent.
func (e *env) submit(user, metadata, percent string) string {
	return fmt.Sprintf(`{
  "type": "view_submission",
  "user": {"id": %q, "username": "someone", "team_id": "T1"},
  "api_app_id": "A1",
  "team": {"id": "T1", "domain": "example"},
  "trigger_id": "4.5.6",
  "view": {"id": "V1", "type": "modal", "callback_id": %q, "private_metadata": %q,
    "state": {"values": {%q: {%q: {"type": "number_input", "value": %q}}}}}
}`, user, ratioCallback, metadata, ratioBlock, ratioInput, percent)
}

func TestSetRatioOpensAModalAndItsSubmissionPromotes(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createAnyWeight()
	ts := e.showPaused(r)
	if got := labels(e.slack.Channel(testChannel)[0].Blocks.BlockSet); !slices.Contains(got, "Set ratio…") {
		t.Fatalf("buttons %q, want Set ratio… with anyWeight", got)
	}
	if code, _ := e.post(e.click(alice, ts, ratioAction, r.ID+"@1"), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("click: status %d", code)
	}
	views := e.slack.Views()
	if len(views) != 1 || views[0].TriggerID != "1.2.3" || views[0].View.CallbackID != ratioCallback {
		t.Fatalf("views.open calls %+v, want the ratio modal on the click's trigger", views)
	}
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Fatalf("opening the modal recorded %+v", in)
	}
	meta := views[0].View.PrivateMetadata
	if code, _ := e.post(e.submit(alice, meta, "20"), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("submit: status %d", code)
	}
	in := pendingIntents(e.get(r.ID))
	if len(in) != 1 || in[0].String() != "promote to 20 %" || in[0].Actor != "alice" || in[0].Surface != release.SurfaceSlack {
		t.Fatalf("pending intents = %+v, want promote to 20 %% by alice via slack", in)
	}
}

func TestSetRatioRefusedWithoutAnyWeight(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	r := e.createPaused()
	e.showPaused(r)
	if got := labels(e.slack.Channel(testChannel)[0].Blocks.BlockSet); slices.Contains(got, "Set ratio…") {
		t.Errorf("buttons %q offer a ratio the environment does not allow", got)
	}
	// A forged submission is refused by the engine, and the person is told the steps.
	if code, _ := e.post(e.submit(alice, r.ID+"@1#"+testChannel, "20"), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("submit: status %d", code)
	}
	e.app.Close()
	if in := pendingIntents(e.get(r.ID)); len(in) != 0 {
		t.Errorf("recorded %+v", in)
	}
	if eph := e.slack.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0], "allowed: 10, 50, 100 %") {
		t.Errorf("told %q, want the allowed steps", eph)
	}
}

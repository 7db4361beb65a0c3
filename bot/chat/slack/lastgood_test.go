package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/deployer/release"
)

// buttonIn finds the button with action id in blocks.
func buttonIn(blocks slack.Blocks, id string) *slack.ButtonBlockElement {
	for _, b := range blocks.BlockSet {
		a, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, e := range a.Elements.ElementSet {
			if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == id {
				return btn
			}
		}
	}
	return nil
}

// waitFor polls cond for up to 5 s: replies to clicks go out in the background.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestLastGoodButtonShowsThePlanThenRollsBack(t *testing.T) {
	e := newEnv(t, ModeHTTP)
	// checkout v1-3-0 succeeded in prod; v1-4-0 is paused there by its gate.
	good := fixture()
	good.ID, good.Phase, good.From, good.To, good.Stages = "", "", release.Revision{}, fixture().From, fixture().Stages[2:]
	good, err := e.engine.Create(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	good.Phase, good.Percent, good.Stage = release.Succeeded, 100, 1
	if err := e.st.UpdateRelease(good.ID, func([]byte) ([]byte, error) { return json.Marshal(good) }); err != nil {
		t.Fatal(err)
	}
	bad := e.createPaused()
	failed := bad
	failed.Phase = release.Failed // a failed release's message carries the button
	if b := buttonIn(slack.Blocks{BlockSet: messageBlocks(failed, t0)}, actionLastGood); b == nil || b.Value != "shop/checkout" {
		t.Fatalf("no last-good button on a failed release: %+v", b)
	}
	ts := e.showPaused(bad)

	if code, _ := e.post(e.click(alice, ts, actionLastGood, "shop/checkout"), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	waitFor(t, "the plan", func() bool { return len(e.slack.Ephemerals()) == 1 })
	plan := e.slack.Ephemerals()[0]
	for _, want := range []string{"*Back to last good* for shop/checkout", "prod on eu-1: checkout `v1-4-0` → `v1-3-0`",
		"registry.example.com/shop/checkout:1.4.0 → registry.example.com/shop/checkout:1.3.0"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if len(pendingIntents(e.get(bad.ID))) != 0 {
		t.Fatal("showing the plan recorded an intent")
	}
	e.slack.mu.Lock()
	confirm := buttonIn(e.slack.ephBlocks[0], actionLastGoodConfirm)
	e.slack.mu.Unlock()
	if confirm == nil || confirm.Confirm == nil || !strings.HasSuffix(confirm.Value, " shop/checkout") {
		t.Fatalf("confirm button %+v", confirm)
	}

	if code, _ := e.post(e.click(bob, ts, actionLastGoodConfirm, confirm.Value), testSecret, e.now); code != http.StatusOK {
		t.Fatalf("confirm: %d", code)
	}
	waitFor(t, "the answer", func() bool { return len(e.slack.Ephemerals()) == 2 })
	if got := e.slack.Ephemerals()[1]; !strings.Contains(got, "Going back to the last good versions") || !strings.Contains(got, bad.ID) {
		t.Errorf("answer: %s", got)
	}
	in := pendingIntents(e.get(bad.ID))
	if len(in) != 1 || in[0].Kind != release.IntentRollback || in[0].Actor != "bob" || in[0].Surface != release.SurfaceSlack {
		t.Errorf("intents %+v, want bob's rollback via slack", in)
	}
}

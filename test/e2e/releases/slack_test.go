package releases

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	chatslack "github.com/shipbot/shipbot/bot/chat/slack"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

const (
	slackChannel = "C0DEPLOYS"
	slackSigning = "e2e-slack-signing-secret"
	gitlabToken  = "e2e-gitlab-token"
)

// channel is slacktest's Slack keeping the channel's messages as they stand
// now, so the test reads what people would see.
type channel struct {
	*slacktest.Server
	mu   sync.Mutex
	seq  int
	msgs []*posted
}

type posted struct {
	ts, thread, text string
	blocks           slack.Blocks
	edits            int
}

func newChannel(t *testing.T) *channel {
	c := &channel{}
	form := func(r *http.Request, k string) string { return r.FormValue(k) }
	c.Server = slacktest.NewTestServer(func(cz slacktest.Customize) {
		cz.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.seq++
			m := &posted{ts: fmt.Sprintf("1700000000.%06d", c.seq), thread: form(r, "thread_ts"), text: form(r, "text")}
			_ = json.Unmarshal([]byte(form(r, "blocks")), &m.blocks)
			c.msgs = append(c.msgs, m)
			reply(w, map[string]any{"ok": true, "channel": form(r, "channel"), "ts": m.ts})
		})
		cz.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, m := range c.msgs {
				if m.ts == form(r, "ts") {
					m.text, m.blocks, m.edits = form(r, "text"), slack.Blocks{}, m.edits+1
					_ = json.Unmarshal([]byte(form(r, "blocks")), &m.blocks)
					reply(w, map[string]any{"ok": true, "channel": form(r, "channel"), "ts": m.ts})
					return
				}
			}
			reply(w, map[string]any{"ok": false, "error": "message_not_found"})
		})
		cz.Handle("/chat.postEphemeral", func(w http.ResponseWriter, r *http.Request) {
			reply(w, map[string]any{"ok": true, "message_ts": "1700000000.999999"})
		})
		cz.Handle("/users.info", func(w http.ResponseWriter, r *http.Request) {
			id := form(r, "user")
			reply(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": strings.ToLower(id) + "@example.com"}}})
		})
		cz.Handle("/response/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	})
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// message returns a copy of the top-level message about rev, if any.
func (c *channel) message(rev string) (posted, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if m.thread == "" && strings.Contains(m.text, rev) {
			return *m, true
		}
	}
	return posted{}, false
}

// button finds the button labelled label in the message's blocks.
func (m posted) button(label string) (*slack.ButtonBlockElement, bool) {
	for _, b := range m.blocks.BlockSet {
		a, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, e := range a.Elements.ElementSet {
			if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.Text != nil && btn.Text.Text == label {
				return btn, true
			}
		}
	}
	return nil, false
}

func (m posted) labels() []string {
	var out []string
	for _, b := range m.blocks.BlockSet {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.Text != nil {
					out = append(out, btn.Text.Text)
				}
			}
		}
	}
	return out
}

// press posts the signed block_actions payload Slack sends when user
// presses btn on the message at ts.
func press(t *testing.T, addr, user, ts string, btn *slack.ButtonBlockElement, responseURL string) {
	t.Helper()
	payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":%q,"team_id":"T1"},"team":{"id":"T1"},
"container":{"type":"message","message_ts":%q,"channel_id":%q},"channel":{"id":%q},"message":{"type":"message","ts":%q},
"response_url":%q,"trigger_id":"1.2.3","actions":[{"action_id":%q,"block_id":"shipbot-actions","value":%q,"type":"button","action_ts":"1700000100.000001"}]}`,
		user, ts, slackChannel, slackChannel, ts, responseURL, btn.ActionID, btn.Value)
	body := url.Values{"payload": {payload}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+chatslack.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(slackSigning))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slack interaction answered %d", resp.StatusCode)
	}
}

// A release paused at 10 %: a maintainer's "Promote to 50%" click moves the
// weights and updates the one message; a reporter's click is refused, the
// weights stay, and the refusal is in the release's history.
func TestSlackPromoteIsAuthorized(t *testing.T) {
	gl := fakegitlab.New(t, gitlabToken)
	gl.SetProjectPath(9, "shop/web")
	gl.SetUser(fakegitlab.User{ID: 1, Username: "mia"})
	gl.SetUser(fakegitlab.User{ID: 2, Username: "rex"})
	gl.SetMember(9, 1, 40) // Maintainer
	gl.SetMember(9, 2, 20) // Reporter
	ch := newChannel(t)

	r := newRig(t, "prod1")
	// Four stages, so that a release paused at 10 % offers both Continue
	// (to 25 %) and Promote to 50 %.
	spec := "strategy: canary\nsteps: [10, 25, 50, 100]\npauseAfter: [10, 25, 50]"
	cfg := strings.Replace(r.config(spec), "gitlab: {baseURL: http://127.0.0.1:1,",
		fmt.Sprintf("gitlab: {baseURL: %s, token: %s,", gl.URL(), gitlabToken), 1)
	cfg += fmt.Sprintf(`slack: {botToken: xoxb-e2e, signingSecret: %s, channel: %s, apiURL: %s}
users:
  - {gitlab: mia, slack: U0MIA}
  - {gitlab: rex, slack: U0REX}
`, slackSigning, slackChannel, ch.GetAPIURL())
	m := r.start(cfg)
	rs := m.Releases()

	tag(t, m.Addr(), "v1.0.0", '1', 100)
	waitRelease(t, rs, "prod1", "v1-0-0", "succeeded", phaseIs(release.Succeeded))
	tag(t, m.Addr(), "v1.1.0", '2', 101)
	rel := waitRelease(t, rs, "prod1", "v1-1-0", "paused after stage 1", pausedAt(1))
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 90, "v1-1-0": 10})

	var msg posted
	fixtures.Eventually(t, 10*time.Second, "release message with a Promote to 50% button", func() error {
		var ok bool
		if msg, ok = ch.message("v1-1-0"); !ok {
			return fmt.Errorf("no message about v1-1-0")
		}
		if _, ok := msg.button("Promote to 50%"); !ok {
			return fmt.Errorf("buttons %v", msg.labels())
		}
		return nil
	})
	btn, _ := msg.button("Promote to 50%")
	responseURL := ch.GetAPIURL() + "response/T1/1/abc"

	// The reporter first: refused, weights unchanged, refusal recorded.
	press(t, m.Addr(), "U0REX", msg.ts, btn, responseURL)
	fixtures.Eventually(t, 10*time.Second, "refusal in the release history", func() error {
		got, err := rs.Get(t.Context(), rel.ID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(got.History, func(e release.Entry) bool {
			return strings.Contains(e.Actor, "rex") && strings.Contains(strings.ToLower(e.Message), "refused")
		}) {
			return fmt.Errorf("history: %+v", got.History)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // a step the refusal wrongly caused would show by now
	if w, _ := r.weights("prod1"); w["v1-1-0"] != 10 {
		t.Fatalf("after the reporter's click weights are %v, want 10 %% still on v1-1-0", w)
	}
	if got, _ := rs.Get(t.Context(), rel.ID); got.Phase != release.Paused || got.Stage != 1 || len(got.Intents) != 0 {
		t.Fatalf("after the refused click: phase %s stage %d intents %+v", got.Phase, got.Stage, got.Intents)
	}

	// The maintainer: the weights move to 50 % and the message says so.
	press(t, m.Addr(), "U0MIA", msg.ts, btn, responseURL)
	r.waitWeights("prod1", map[string]int32{"v1-0-0": 50, "v1-1-0": 50})
	got := waitRelease(t, rs, "prod1", "v1-1-0", "paused at 50%", func(r release.Release) bool {
		return r.Phase == release.Paused && r.Percent == 50
	})
	if len(got.Intents) != 1 || got.Intents[0].Actor != "mia" || got.Intents[0].Surface != release.SurfaceSlack ||
		got.Intents[0].Kind != release.IntentPromote || got.Intents[0].Percent != 50 {
		t.Errorf("intents %+v, want one promote 50 by mia from slack", got.Intents)
	}
	fixtures.Eventually(t, 10*time.Second, "message updated in place to 50%", func() error {
		now, _ := ch.message("v1-1-0")
		if now.ts != msg.ts || now.edits == 0 || !strings.Contains(now.text+fmt.Sprint(now.blocks), "50") {
			return fmt.Errorf("message %s, %d edits, text %q", now.ts, now.edits, now.text)
		}
		if _, still := now.button("Promote to 50%"); still {
			return fmt.Errorf("it still offers Promote to 50%%: %v", now.labels())
		}
		return nil
	})
	// Every announcement is in the audit: Slack took each pause, while
	// GitLab's commit status was already running, which GitLab would not
	// take again, so the history says it was unchanged rather than sent.
	final, _ := rs.Get(t.Context(), rel.ID)
	if !slices.ContainsFunc(final.History, func(e release.Entry) bool {
		return e.Kind == release.EntryNotified && e.Message == "Paused announced to slack; unchanged: gitlab"
	}) {
		t.Errorf("no history entry says the pause was announced to slack and unchanged in gitlab: %+v", final.History)
	}
	if slices.ContainsFunc(final.History, func(e release.Entry) bool {
		return e.Kind == release.EntryNotified && strings.Contains(e.Message, "announced to slack, gitlab") && strings.HasPrefix(e.Message, "Paused")
	}) {
		t.Errorf("a pause is said to be announced to gitlab, whose status was running already: %+v", final.History)
	}
	ch.mu.Lock()
	top := 0
	for _, m := range ch.msgs {
		if m.thread == "" && strings.Contains(m.text, "v1-1-0") {
			top++
		}
	}
	ch.mu.Unlock()
	if top != 1 {
		t.Errorf("%d top-level messages about v1-1-0, want one edited in place", top)
	}
}

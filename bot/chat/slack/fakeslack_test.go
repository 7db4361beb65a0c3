package slack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// fakeSlack is slacktest's in-process Slack with the few Web API methods
// shipbot calls keeping state: the channel's messages as they stand now, so
// tests assert on what people would see rather than on calls.
type fakeSlack struct {
	*slacktest.Server

	mu         sync.Mutex
	seq        int
	messages   []*fakeMessage        // top-level messages and thread replies, in post order
	ephemerals []string              // texts only the clicker saw, via chat.postEphemeral or a response URL
	ephBlocks  []slack.Blocks        // the blocks of response-URL replies, in order
	emails     map[string]string     // Slack user id → profile email
	failPost   string                // when set, chat.postMessage answers this error
	hold       chan struct{}         // when set, response URLs wait for it to close
	ws         func(*websocket.Conn) // plays Slack's side of a Socket Mode connection
	views      []fakeView            // modals opened by views.open
}

// fakeView is a modal shipbot opened.
type fakeView struct {
	TriggerID string
	View      slack.ModalViewRequest
}

type fakeMessage struct {
	Channel, TS, ThreadTS, Text string
	Blocks                      slack.Blocks
	Edits                       int
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{emails: map[string]string{}}
	f.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.postMessage)
		c.Handle("/chat.update", f.update)
		c.Handle("/chat.postEphemeral", f.postEphemeral)
		c.Handle("/users.info", f.usersInfo)
		c.Handle("/views.open", f.viewsOpen)
		c.Handle("/response/", f.response)
		c.Handle("/ws", slacktest.Websocket(func(conn *websocket.Conn) {
			f.mu.Lock()
			ws := f.ws
			f.mu.Unlock()
			if ws != nil {
				ws(conn)
			}
		}))
	})
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

func (f *fakeSlack) viewsOpen(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TriggerID string                 `json:"trigger_id"`
		View      slack.ModalViewRequest `json:"view"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TriggerID == "" {
		answer(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	f.mu.Lock()
	f.views = append(f.views, fakeView{TriggerID: req.TriggerID, View: req.View})
	f.mu.Unlock()
	answer(w, map[string]any{"ok": true, "view": map[string]any{"id": "V1"}})
}

// Views lists the modals opened so far.
func (f *fakeSlack) Views() []fakeView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeView(nil), f.views...)
}

// ResponseURL is a response_url Slack would put in a click's payload.
func (f *fakeSlack) ResponseURL() string { return "http://" + f.ServerAddr + "/response/T1/1/abc" }

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPost != "" {
		answer(w, map[string]any{"ok": false, "error": f.failPost})
		return
	}
	f.seq++
	m := &fakeMessage{Channel: r.FormValue("channel"), TS: fmt.Sprintf("1700000000.%06d", f.seq),
		ThreadTS: r.FormValue("thread_ts"), Text: r.FormValue("text"), Blocks: decodeBlocks(r.FormValue("blocks"))}
	f.messages = append(f.messages, m)
	answer(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.find(r.FormValue("channel"), r.FormValue("ts"))
	if m == nil {
		answer(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	m.Text, m.Blocks = r.FormValue("text"), decodeBlocks(r.FormValue("blocks"))
	m.Edits++
	answer(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
}

func (f *fakeSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ephemerals = append(f.ephemerals, r.FormValue("text"))
	answer(w, map[string]any{"ok": true, "message_ts": "1700000000.999999"})
}

func (f *fakeSlack) usersInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.FormValue("user")
	email, ok := f.emails[id]
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	answer(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}})
}

// response takes what shipbot posts to a click's response_url.
func (f *fakeSlack) response(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	var msg slack.WebhookMessage
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &msg); err != nil || msg.ResponseType != slack.ResponseTypeEphemeral || msg.ReplaceOriginal {
		http.Error(w, "want an ephemeral reply that leaves the original alone, got "+string(body), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.ephemerals = append(f.ephemerals, msg.Text)
	if msg.Blocks != nil {
		f.ephBlocks = append(f.ephBlocks, *msg.Blocks)
	}
	f.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (f *fakeSlack) find(channel, ts string) *fakeMessage {
	for _, m := range f.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// set changes the fake's behaviour under its lock.
func (f *fakeSlack) set(change func(*fakeSlack)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// Channel returns copies of the channel's top-level messages.
func (f *fakeSlack) Channel(channel string) []fakeMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMessage
	for _, m := range f.messages {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, *m)
		}
	}
	return out
}

// Thread returns copies of the replies to the message at ts.
func (f *fakeSlack) Thread(channel, ts string) []fakeMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMessage
	for _, m := range f.messages {
		if m.Channel == channel && m.ThreadTS == ts {
			out = append(out, *m)
		}
	}
	return out
}

// Delete removes a message, as a person in the channel might.
func (f *fakeSlack) Delete(channel, ts string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.messages {
		if m.Channel == channel && m.TS == ts {
			f.messages = append(f.messages[:i], f.messages[i+1:]...)
			return
		}
	}
}

// Ephemerals returns what clickers were told privately.
func (f *fakeSlack) Ephemerals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ephemerals...)
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBlocks(raw string) slack.Blocks {
	var b slack.Blocks
	if raw != "" {
		_ = json.Unmarshal([]byte(raw), &b)
	}
	return b
}

// labels lists a message's button labels, in order.
func labels(blocks []slack.Block) []string {
	var out []string
	for _, b := range blocks {
		a, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, e := range a.Elements.ElementSet {
			if btn, ok := e.(*slack.ButtonBlockElement); ok {
				out = append(out, btn.Text.Text)
			}
		}
	}
	return out
}

// render is a message's blocks as JSON, for "does it say X" checks.
func render(blocks []slack.Block) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(slack.Blocks{BlockSet: blocks})
	return b.String()
}

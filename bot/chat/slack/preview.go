package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/store"
)

// previewNotifier keeps one short message per merge request saying whether
// its preview is ready, with its URL, or failed, with the reason. The
// message is posted the first time and edited in place after, and only when
// what it says changed: a project with three apps reports ready three
// times, the channel sees it once.
type previewNotifier struct {
	api     api
	store   *store.Store
	route   router
	log     *slog.Logger
	timeout time.Duration
	locks   keyLocks // one update per merge request at a time
}

var _ deployer.Notifier = (*previewNotifier)(nil)

func newPreviewNotifier(api api, o Options) *previewNotifier {
	return &previewNotifier{api: api, store: o.Store, route: router{def: o.Channel, byEnv: o.Channels}, log: o.Log, timeout: o.Timeout}
}

// previewRef is where a merge request's preview message lives and what it
// says, stored as a note under previewNoteKey.
type previewRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Text    string `json:"text"` // as last shown, so an unchanged state is not posted again
}

func previewNoteKey(previewKey string) string { return "slack/preview/" + previewKey }

// Notify shows preview ready and failed events, and builds refused for
// their .shipbot.yaml; it ignores every other event.
func (p *previewNotifier) Notify(ctx context.Context, e deployer.Event) error {
	if e.Reason == deployer.ReasonConfigRefused {
		return p.refused(ctx, e)
	}
	if e.Preview == nil || (e.Reason != deployer.ReasonPreviewReady && e.Reason != deployer.ReasonPreviewFailed) {
		return nil
	}
	pv := *e.Preview
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	defer p.locks.lock(pv.Key)()
	if err := p.show(ctx, e.Deployment.Environment, pv, previewText(e.Reason, pv)); err != nil {
		p.log.Warn("slack: preview message", "preview", pv.Key, "reason", e.Reason, "err", err)
		return fmt.Errorf("slack: preview %s: %w", pv.Key, err)
	}
	return nil
}

// refused posts, in the default channel, that a build deployed nothing
// and why: the people who push may never open the merge request.
func (p *previewNotifier) refused(ctx context.Context, e deployer.Event) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if _, _, err := p.api.PostMessageContext(ctx, p.route.channel(""), slack.MsgOptionText(refusedText(e), false)); err != nil {
		return fmt.Errorf("slack: refused build: %w", wrap("chat.postMessage", err))
	}
	return nil
}

// refusedText says which build was refused and every problem of its file.
func refusedText(e deployer.Event) string {
	d := e.Deployment
	where := fmt.Sprintf("*%s* `%s` at `%s`", esc(d.Project), esc(d.Ref), esc(d.SHA[:min(len(d.SHA), 8)]))
	if e.MergeRequest != 0 {
		where += fmt.Sprintf(" (!%d)", e.MergeRequest)
	}
	return ":no_entry: Not deployed · " + where + ": its .shipbot.yaml was refused, nothing was applied\n" + codeBlock(truncate(e.Message, maxReply))
}

// show edits the merge request's message to say text, or posts it when there
// is none yet or someone deleted it.
func (p *previewNotifier) show(ctx context.Context, env string, pv store.Preview, text string) error {
	ref, err := p.ref(pv.Key)
	switch {
	case err == nil && ref.Text == text:
		return nil // already says so
	case err == nil:
		_, _, _, err = p.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, slack.MsgOptionText(text, false))
		if !isGone(err) {
			if err != nil {
				return wrap("chat.update", err)
			}
			ref.Text = text
			return p.save(pv.Key, ref)
		}
		p.log.Info("slack: preview message was deleted; posting a new one", "preview", pv.Key)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	ch, ts, err := p.api.PostMessageContext(ctx, p.route.channel(env), slack.MsgOptionText(text, false))
	if err != nil {
		return wrap("chat.postMessage", err)
	}
	return p.save(pv.Key, previewRef{Channel: ch, TS: ts, Text: text})
}

// previewText is the message for a preview's state. It reads only the
// preview, and nothing that differs between the apps of one merge request.
func previewText(reason deployer.Reason, pv store.Preview) string {
	mr := fmt.Sprintf("!%d", pv.IID)
	if pv.Title != "" {
		mr += " " + truncate(pv.Title, 80)
	}
	mr = esc(mr)
	if pv.WebURL != "" {
		mr = fmt.Sprintf("<%s|%s>", esc(pv.WebURL), mr)
	}
	where := fmt.Sprintf("*%s* %s", esc(pv.Project), mr)
	if sha := pv.HeadSHA; sha != "" {
		// The engine reports only on the merge request's head: an older
		// commit's result is stale and never notified.
		where += fmt.Sprintf(" at `%s`", esc(sha[:min(len(sha), 8)]))
	}
	if reason == deployer.ReasonPreviewReady {
		text := ":rocket: Preview ready · " + where
		if pv.URL != "" {
			text += "\n" + esc(pv.URL)
		}
		return text
	}
	text := ":x: Preview failed · " + where
	if pv.Reason != "" {
		text += "\n" + codeBlock(truncate(pv.Reason, maxReply))
	}
	return text
}

func (p *previewNotifier) ref(key string) (previewRef, error) {
	raw, err := p.store.Note(previewNoteKey(key))
	if err != nil {
		return previewRef{}, err
	}
	var ref previewRef
	if err := json.Unmarshal(raw, &ref); err != nil || ref.Channel == "" || ref.TS == "" {
		return previewRef{}, fmt.Errorf("note %s: unreadable message reference %q", previewNoteKey(key), raw)
	}
	return ref, nil
}

func (p *previewNotifier) save(key string, ref previewRef) error {
	raw, err := json.Marshal(ref)
	if err != nil {
		return err
	}
	return p.store.PutNote(previewNoteKey(key), raw)
}

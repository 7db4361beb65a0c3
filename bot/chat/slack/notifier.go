package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Notifier keeps one message per release in its environment's channel:
// posted at the release's first event and edited in place at every later
// one, after a restart too. Gate output and failure reasons go to the
// message's thread. It implements release.Notifier.
type Notifier struct {
	api     api
	store   *store.Store
	route   router
	minSev  notify.Severity // thread replies below it are not posted
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	locks   keyLocks // one update per release at a time

	mu   sync.Mutex
	last map[string]release.Release // each active release as its last event showed it
}

var _ release.Notifier = (*Notifier)(nil)

func newNotifier(api api, o Options) *Notifier {
	return &Notifier{
		api: api, store: o.Store, route: router{def: o.Channel, byEnv: o.Channels}, minSev: o.MinSeverity,
		log: o.Log, now: o.Now, timeout: o.Timeout, last: map[string]release.Release{},
	}
}

// router picks the channel a new message goes to. A message already posted
// stays where it is: its reference records the channel, so a changed
// config never splits a release between two channels.
type router struct {
	def   string            // the default channel
	byEnv map[string]string // environment → channel
}

func (r router) channel(env string) string {
	if ch, ok := r.byEnv[env]; ok {
		return ch
	}
	return r.def
}

// keyLocks serialises the updates of one message, so that two events never
// post two messages.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (k *keyLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*sync.Mutex{}
	}
	l := k.m[key]
	if l == nil {
		l = &sync.Mutex{}
		k.m[key] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// msgRef is where a release's message lives, stored as a note under noteKey.
type msgRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

func noteKey(releaseID string) string { return "slack/msg/" + releaseID }

// Notify shows the event's release in its message and, for gate results and
// failures, replies in the message's thread.
func (n *Notifier) Notify(ctx context.Context, e release.Event) error {
	r := e.Release
	if r.ID == "" {
		return fmt.Errorf("slack: %s event without a release id", e.Reason)
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	defer n.locks.lock(r.ID)()
	n.remember(r)
	now := e.At
	if now.IsZero() {
		now = n.now()
	}
	ref, err := n.show(ctx, r, now)
	if err == nil {
		err = n.reply(ctx, ref, e)
	}
	if err != nil {
		n.log.Warn("slack: release message", "release", r.ID, "reason", e.Reason, "err", err)
		return fmt.Errorf("slack: release %s: %w", r.ID, err)
	}
	return nil
}

func (n *Notifier) remember(r release.Release) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r.Phase.Terminal() {
		delete(n.last, r.ID)
		return
	}
	n.last[r.ID] = r
}

// show edits the release's message, or posts it when there is none yet or
// someone deleted it.
func (n *Notifier) show(ctx context.Context, r release.Release, now time.Time) (msgRef, error) {
	opts := messageOptions(r, now)
	ref, err := n.ref(r.ID)
	switch {
	case err == nil:
		_, _, _, err = n.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, opts...)
		if !isGone(err) {
			return ref, wrap("chat.update", err)
		}
		n.log.Info("slack: release message was deleted; posting a new one", "release", r.ID)
	case !errors.Is(err, store.ErrNotFound):
		return msgRef{}, err
	}
	ch, ts, err := n.api.PostMessageContext(ctx, n.route.channel(r.Environment), opts...)
	if err != nil {
		return msgRef{}, wrap("chat.postMessage", err)
	}
	ref = msgRef{Channel: ch, TS: ts}
	return ref, n.save(r.ID, ref)
}

// refresh re-renders the message as the engine last showed the release, plus
// the intents recorded since: a click shows at once, and an answer that
// races the engine's next event can never bring back an older phase.
func (n *Notifier) refresh(ctx context.Context, recorded release.Release) error {
	defer n.locks.lock(recorded.ID)()
	ref, err := n.ref(recorded.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // no message, nothing to refresh
	}
	if err != nil {
		return err
	}
	r := recorded
	n.mu.Lock()
	if last, ok := n.last[r.ID]; ok {
		r = withIntents(last, recorded.Intents)
	}
	n.mu.Unlock()
	_, _, _, err = n.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, messageOptions(r, n.now())...)
	return wrap("chat.update", err)
}

// withIntents is r with the intents of intents it does not have yet.
func withIntents(r release.Release, intents []release.Intent) release.Release {
	seq := 0
	if k := len(r.Intents); k > 0 {
		seq = r.Intents[k-1].Seq
	}
	r.Intents = slices.Clone(r.Intents)
	for _, in := range intents {
		if in.Seq > seq {
			r.Intents = append(r.Intents, in)
		}
	}
	return r
}

// threaded are the events whose message goes to the thread, with its title.
var threaded = map[release.Reason]string{
	release.ReasonGatePassed:     ":white_check_mark: Gate passed",
	release.ReasonGateFailed:     ":x: Gate failed",
	release.ReasonNotReady:       ":warning: Pods not ready",
	release.ReasonFailed:         ":x: Release failed",
	release.ReasonRolledBack:     ":leftwards_arrow_with_hook: Rolled back",
	release.ReasonIntentRejected: ":no_entry: Request not applied",
	release.ReasonStillPaused:    ":hourglass: Still waiting for approval",
	release.ReasonHeld:           ":lock: Held",
	release.ReasonFreezeOverride: ":unlock: Released through a freeze",
}

// maxReply keeps a thread reply under Slack's 4,000 characters of text.
const maxReply = 3500

// replyText is the thread reply for e, or "" when e gets none.
func replyText(e release.Event) string {
	title, ok := threaded[e.Reason]
	if !ok || e.Message == "" {
		return ""
	}
	return fmt.Sprintf("%s · stage %d/%d\n%s", title, min(e.Release.Stage+1, len(e.Release.Stages)), len(e.Release.Stages), codeBlock(truncate(e.Message, maxReply)))
}

func (n *Notifier) reply(ctx context.Context, ref msgRef, e release.Event) error {
	text := replyText(e)
	if text == "" || !notify.Of(e.Reason).AtLeast(n.minSev) {
		return nil
	}
	_, _, err := n.api.PostMessageContext(ctx, ref.Channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(ref.TS))
	return wrap("thread reply", err)
}

func (n *Notifier) ref(releaseID string) (msgRef, error) {
	raw, err := n.store.Note(noteKey(releaseID))
	if err != nil {
		return msgRef{}, err
	}
	var ref msgRef
	if err := json.Unmarshal(raw, &ref); err != nil || ref.Channel == "" || ref.TS == "" {
		return msgRef{}, fmt.Errorf("note %s: unreadable message reference %q", noteKey(releaseID), raw)
	}
	return ref, nil
}

func (n *Notifier) save(releaseID string, ref msgRef) error {
	raw, err := json.Marshal(ref)
	if err != nil {
		return err
	}
	return n.store.PutNote(noteKey(releaseID), raw)
}

// isGone reports whether Slack says the message no longer exists.
func isGone(err error) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == "message_not_found"
}

func wrap(call string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", call, err)
}

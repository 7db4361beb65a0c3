package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
)

// actBudget bounds resolving the clicker and recording their intent: Slack
// wants an answer to an interaction within 3 s.
const actBudget = 2 * time.Second

// errIdentity marks a clicker shipbot could not match to a GitLab account.
var errIdentity = errors.New("unknown identity")

// click is one press of a shipbot button.
type click struct {
	releaseID   string
	intent      release.Intent
	project     string // a last-good button: the project it is about
	digest      string // the confirming last-good button: the plan's digest
	userID      string
	channelID   string
	responseURL string
}

// clicks reads the shipbot buttons pressed in a block_actions callback;
// other callbacks and other apps' actions yield none.
func clicks(cb slack.InteractionCallback) ([]click, error) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil, nil
	}
	var out []click
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID == ratioAction {
			continue // opens a modal; its submission is the click (ratio.go)
		}
		if a.ActionID == actionLastGood || a.ActionID == actionLastGoodConfirm {
			project, digest, err := parseLastGood(a.ActionID, a.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, click{project: project, digest: digest, userID: cb.User.ID, channelID: cb.Channel.ID, responseURL: cb.ResponseURL})
			continue
		}
		id, in, err := parseAction(a.ActionID, a.Value)
		if errors.Is(err, errNotOurs) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, click{releaseID: id, intent: in, userID: cb.User.ID, channelID: cb.Channel.ID, responseURL: cb.ResponseURL})
	}
	return out, nil
}

// dispatcher turns clicks into recorded intents, for HTTP and Socket Mode alike.
type dispatcher struct {
	ops      Ops
	ids      Identities
	api      api
	notifier *Notifier
	http     *http.Client
	log      *slog.Logger
	timeout  time.Duration
	emails   *emailCache
	gov      Governance     // what slash commands act through
	wg       sync.WaitGroup // follow-ups in flight
}

// dispatch records what the callback's buttons ask for, or learns why it
// can't, within actBudget. Telling the clicker and refreshing the message
// happen in the background: neither may delay the answer Slack waits for.
func (d *dispatcher) dispatch(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type == slack.InteractionTypeBlockActions {
		for _, a := range cb.ActionCallback.BlockActions {
			if a.ActionID == ratioAction {
				d.openRatio(ctx, cb, a)
			}
		}
	}
	cs, err := clicks(cb)
	if err != nil {
		d.log.Warn("slack: unreadable button", "user", cb.User.ID, "err", err)
		return
	}
	switch c, ok, err := ratioSubmission(cb); {
	case err != nil:
		d.log.Warn("slack: unreadable ratio", "user", cb.User.ID, "err", err)
	case ok:
		cs = append(cs, c)
	}
	for _, c := range cs {
		if c.project != "" {
			d.lastGood(ctx, c)
			continue
		}
		r, err := d.act(ctx, c)
		d.followUp(ctx, c, r, err)
	}
}

func (d *dispatcher) act(ctx context.Context, c click) (release.Release, error) {
	ctx, cancel := context.WithTimeout(ctx, actBudget)
	defer cancel()
	a, err := d.actor(ctx, c.userID)
	if err != nil {
		return release.Release{}, err
	}
	return d.ops.Act(ctx, a, c.releaseID, c.intent)
}

// actor resolves a Slack user to a GitLab account: by id alone when
// shipbot.yaml links it, without asking Slack, else by profile email.
func (d *dispatcher) actor(ctx context.Context, userID string) (ops.Actor, error) {
	a, err := d.ids.Resolve(ctx, userID, "")
	if errors.Is(err, ops.ErrNotMapped) {
		email, eerr := d.email(ctx, userID)
		if eerr != nil {
			return ops.Actor{}, fmt.Errorf("%w: slack user %s: %w", errIdentity, userID, eerr)
		}
		a, err = d.ids.Resolve(ctx, userID, email)
	}
	if err != nil {
		return ops.Actor{}, fmt.Errorf("%w: slack user %s: %w", errIdentity, userID, err)
	}
	a.Surface, a.ChatID = release.SurfaceSlack, userID
	return a, nil
}

func (d *dispatcher) email(ctx context.Context, userID string) (string, error) {
	if e, ok := d.emails.get(userID); ok {
		return e, nil
	}
	u, err := d.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", wrap("users.info", err)
	}
	d.emails.put(userID, u.Profile.Email)
	return u.Profile.Email, nil
}

// followUp, in the background, refreshes the message after a recorded
// intent or tells the clicker why nothing was recorded.
func (d *dispatcher) followUp(ctx context.Context, c click, r release.Release, actErr error) {
	d.background(ctx, func(ctx context.Context) {
		if actErr == nil {
			if err := d.notifier.refresh(ctx, r); err != nil {
				d.log.Warn("slack: refresh release message", "release", c.releaseID, "err", err)
			}
			return
		}
		level := slog.LevelInfo
		if errkind.Of(actErr) == errkind.Internal {
			level = slog.LevelError
		}
		d.log.Log(ctx, level, "slack: click not recorded", "release", c.releaseID, "intent", c.intent.String(), "user", c.userID, "err", actErr)
		if err := d.tell(ctx, c, explain(c, actErr)); err != nil {
			d.log.Warn("slack: reply to click", "release", c.releaseID, "user", c.userID, "err", err)
		}
	})
}

// background runs fn after the click is answered, within d.timeout, and
// outlives the request's context; wait waits for it.
func (d *dispatcher) background(ctx context.Context, fn func(context.Context)) {
	ctx = context.WithoutCancel(ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, d.timeout)
		defer cancel()
		fn(ctx)
	}()
}

// explain says what a clicker reads when nothing was recorded: errkind
// decides the kind and the words, this only frames them for Slack. An
// internal error reads errkind.InternalText; followUp logs it.
func explain(c click, err error) string {
	kind := errkind.Of(err)
	switch {
	case kind == errkind.NeedsApproval:
		return fmt.Sprintf(":ballot_box_with_check: Your approval to %s release `%s` is kept in its history: %s. The release moves on once enough people ask.",
			c.intent, c.releaseID, esc(errkind.Text(err)))
	case kind == errkind.Forbidden:
		return fmt.Sprintf(":no_entry: You can't %s release `%s`: %s", c.intent, c.releaseID, esc(errkind.Text(err)))
	case errors.Is(err, errIdentity):
		return unknownIdentity
	case kind == errkind.NotFound:
		return fmt.Sprintf(":grey_question: Release `%s` no longer exists.", c.releaseID)
	case kind == errkind.Conflict, kind == errkind.Invalid:
		return ":warning: Not recorded: " + esc(errkind.Text(err))
	case errors.Is(err, context.DeadlineExceeded):
		return ":hourglass: shipbot took too long to record that; try again in a moment."
	}
	return ":boom: Nothing was recorded: " + errkind.InternalText + "."
}

// unknownIdentity is what a person reads when shipbot cannot act for them.
const unknownIdentity = ":bust_in_silhouette: shipbot could not match your Slack account to a GitLab user, so it cannot act for you. " +
	"Ask an admin to check that your Slack email is on your GitLab account."

// tell sends the clicker a message only they see.
func (d *dispatcher) tell(ctx context.Context, c click, text string) error {
	if c.responseURL == "" {
		_, err := d.api.PostEphemeralContext(ctx, c.channelID, c.userID, slack.MsgOptionText(text, false))
		return wrap("chat.postEphemeral", err)
	}
	msg := &slack.WebhookMessage{Text: text, ResponseType: slack.ResponseTypeEphemeral}
	return wrap("response_url", slack.PostWebhookCustomHTTPContext(ctx, c.responseURL, d.http, msg))
}

func (d *dispatcher) wait() { d.wg.Wait() }

// emailTTL bounds how long a user's email is trusted without asking Slack
// again: an email that moves to another person must stop mapping to the first.
const emailTTL = 10 * time.Minute

// emailCache spares a users.info call on every click of the same person.
type emailCache struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cachedEmail
}

type cachedEmail struct {
	email string
	at    time.Time
}

func newEmailCache(now func() time.Time) *emailCache {
	return &emailCache{now: now, m: map[string]cachedEmail{}}
}

func (c *emailCache) get(userID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[userID]
	if !ok || c.now().Sub(e.at) > emailTTL {
		return "", false
	}
	return e.email, true
}

func (c *emailCache) put(userID, email string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if c.now().Sub(e.at) > emailTTL {
			delete(c.m, id)
		}
	}
	c.m[userID] = cachedEmail{email: email, at: c.now()}
}

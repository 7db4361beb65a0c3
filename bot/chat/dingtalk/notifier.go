package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
)

// NotifierOptions configure a Notifier: one robot, one group.
type NotifierOptions struct {
	Robot     Sender  // required
	Tokens    *Tokens // required: signs the button links
	PublicURL string  // required: shipbot's address as browsers reach it, e.g. https://shipbot.example.com

	// Limit messages in any Window: 20 in 62 s when 0, DingTalk's 20 a
	// minute plus 2 s for network jitter. Feishu allows 100 a minute.
	Limit  int
	Window time.Duration
	// Cooldown is how long to send nothing after the service says the robot
	// is over its limit; 10 minutes when 0, DingTalk's ban.
	Cooldown time.Duration
	// Retries is how many times a message that failed for a transient
	// reason (network, 5xx) is tried again; 3 when 0.
	Retries int

	// Reasons that send a message; all when empty.
	Reasons []release.Reason
	// ExternalBrowser makes DingTalk open buttons in the system browser,
	// where the authenticating proxy's login cookie lives, rather than its
	// built-in one.
	ExternalBrowser bool

	Now func() time.Time // time.Now when nil
	Log *slog.Logger     // slog.Default() when nil
}

// Notifier posts release events to a group, one message per update. It
// implements release.Notifier: Notify only queues, and Run sends, never
// faster than the robot's limit. While over the limit it keeps only the
// latest state of each release, so the group sees fewer but current
// messages and the last one always carries the final state.
type Notifier struct {
	o    NotifierOptions
	wake chan struct{}

	mu      sync.Mutex
	order   []string                 // release ids waiting, oldest first
	pending map[string]*pendingEvent // the latest state of each
	limit   window
	hold    time.Time // send nothing before this, after a rate-limit answer or a failure
}

type pendingEvent struct {
	event release.Event
	tries int
}

var _ release.Notifier = (*Notifier)(nil)

// Defaults for NotifierOptions.
const (
	DefaultLimit    = 20
	DefaultWindow   = time.Minute + 2*time.Second
	DefaultCooldown = 10 * time.Minute
	defaultRetries  = 3
	sendTimeout     = 15 * time.Second
)

// NewNotifier checks o and fills in its defaults.
func NewNotifier(o NotifierOptions) (*Notifier, error) {
	if o.Robot == nil || o.Tokens == nil {
		return nil, fmt.Errorf("dingtalk notifier: %w: a robot and link tokens are required", release.ErrInvalid)
	}
	u, err := url.Parse(o.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("dingtalk notifier: %w: publicURL %q must be an absolute http(s) URL", release.ErrInvalid, o.PublicURL)
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Retries <= 0 {
		o.Retries = defaultRetries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Notifier{
		o: o, wake: make(chan struct{}, 1), pending: map[string]*pendingEvent{},
		limit: window{limit: o.Limit, size: o.Window},
	}, nil
}

// Notify queues e, replacing any state of the same release still waiting.
// It never blocks on the network.
func (n *Notifier) Notify(_ context.Context, e release.Event) error {
	if len(n.o.Reasons) > 0 && !slices.Contains(n.o.Reasons, e.Reason) {
		return nil
	}
	n.mu.Lock()
	if p := n.pending[e.Release.ID]; p != nil {
		p.event, p.tries = e, 0 // keeps its place in line
	} else {
		n.pending[e.Release.ID] = &pendingEvent{event: e}
		n.order = append(n.order, e.Release.ID)
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sends queued messages until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := n.flush(ctx)
		var tick <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			if left := n.waiting(); left > 0 {
				n.o.Log.Warn("dingtalk: stopping with messages unsent", "releases", left)
			}
			return nil
		case <-n.wake:
		case <-tick:
		}
	}
}

func (n *Notifier) waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.order)
}

// flush sends what the limit allows now and returns how long to wait before
// the next send, or 0 when nothing waits.
func (n *Notifier) flush(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		p, wait := n.next()
		if p == nil {
			return wait
		}
		n.send(ctx, p)
	}
	return 0
}

// next takes the oldest waiting release and counts its send against the
// limit, or says how long until one may go.
func (n *Notifier) next() (*pendingEvent, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.order) == 0 {
		return nil, 0
	}
	now := n.o.Now()
	if now.Before(n.hold) {
		return nil, n.hold.Sub(now)
	}
	if d := n.limit.wait(now); d > 0 {
		return nil, d
	}
	id := n.order[0]
	n.order = n.order[1:]
	p := n.pending[id]
	delete(n.pending, id)
	// A failed send may still have reached the service and counted there.
	n.limit.record(now)
	return p, 0
}

func (n *Notifier) send(ctx context.Context, p *pendingEvent) {
	msg, err := n.message(p.event)
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err = n.o.Robot.Send(sctx, msg)
		cancel()
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	id := p.event.Release.ID
	var refused *APIError
	switch {
	case errors.As(err, &refused):
		n.o.Log.Error("dingtalk: robot refused a message; check its security settings", "release", id, "reason", p.event.Reason, "err", err)
		return
	case errors.Is(err, ErrRateLimited):
		n.o.Log.Error("dingtalk: robot is over its rate limit; pausing", "release", id, "for", n.o.Cooldown, "err", err)
		n.retry(p, n.o.Cooldown, false)
	case p.tries+1 >= n.o.Retries:
		n.o.Log.Error("dingtalk: giving up on a message", "release", id, "reason", p.event.Reason, "tries", p.tries+1, "err", err)
	default:
		n.o.Log.Warn("dingtalk: send failed; will retry", "release", id, "reason", p.event.Reason, "err", err)
		n.retry(p, time.Duration(p.tries+1)*5*time.Second, true)
	}
}

// retry puts p back at the front of the line, unless a newer state of its
// release arrived meanwhile, and holds all sending for a while.
func (n *Notifier) retry(p *pendingEvent, hold time.Duration, count bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hold = n.o.Now().Add(hold)
	id := p.event.Release.ID
	if n.pending[id] != nil {
		return
	}
	if count {
		p.tries++
	}
	n.pending[id] = p
	n.order = append([]string{id}, n.order...)
}

// message turns an event into a chat message with freshly signed links.
func (n *Notifier) message(e release.Event) (Message, error) {
	c := NewCard(e)
	m := Message{Title: c.Title, Text: c.Text}
	for _, a := range c.Actions {
		tok, err := n.o.Tokens.Issue(a)
		if err != nil {
			return Message{}, err
		}
		link := n.o.PublicURL + ActionsPath + tok
		if n.o.ExternalBrowser {
			link = "dingtalk://dingtalkclient/page/link?pc_slide=false&url=" + url.QueryEscape(link)
		}
		m.Buttons = append(m.Buttons, Button{Title: a.Label(), URL: link})
	}
	return m, nil
}

// Package outgoing posts shipbot's events to HTTP endpoints as signed JSON
// (docs/EVENTS.md): every release event, and every deploy and preview event.
//
// Delivery is asynchronous: Notify puts the event on a bounded in-memory
// queue and returns at once, so a slow receiver never holds the engine up.
// Run delivers in order, one at a time, retrying on network errors, 5xx and
// 429. The queue is not persisted: events still queued when shipbot stops,
// or that find the queue full, are dropped, logged and counted. The audit
// history in the store remains the durable record.
package outgoing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
)

// Options configure one endpoint.
type Options struct {
	Name   string // names the endpoint in logs and metrics; its host when empty
	URL    string // required; it may hold a token, so it is never logged
	Secret string // required: the HMAC key receivers verify with
	// Events selects what is sent: "*", a type ("release.*"), one event
	// ("release.Paused") or a reason of any type ("Paused"). All when empty.
	Events []string

	MaxAttempts int           // tries per event, including the first; 5 when 0
	BaseDelay   time.Duration // backoff before the second try, doubled each time; 1s when 0
	MaxDelay    time.Duration // backoff cap; 1m when 0
	// MaxRetryAfter is the longest Retry-After honoured; a receiver asking
	// for longer makes shipbot give the event up. 10m when 0.
	MaxRetryAfter time.Duration
	Timeout       time.Duration // per attempt; 10s when 0
	QueueSize     int           // events waiting for delivery; 256 when 0

	HTTP    *http.Client                                     // a client that does not follow redirects when nil
	Now     func() time.Time                                 // time.Now when nil
	Sleep   func(ctx context.Context, d time.Duration) error // waits between tries; a timer when nil
	Jitter  func() float64                                   // in [0, 1); math/rand when nil
	Log     *slog.Logger                                     // slog.Default() when nil
	Metrics prometheus.Registerer                            // optional
}

// Notifier delivers events to one endpoint.
type Notifier struct {
	o     Options
	queue chan delivery

	delivered, rejected, gaveUp, dropped atomic.Uint64
}

// delivery is one event on its way: the body is fixed when it is queued, so
// retries send the same bytes under the same delivery id.
type delivery struct {
	id    string
	event string
	body  []byte
}

// NewNotifier checks o, fills in its defaults and registers its metrics.
func NewNotifier(o Options) (*Notifier, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("outgoing webhook %s: %w: url must be an absolute http(s) URL", o.Name, release.ErrInvalid)
	}
	if o.Secret == "" {
		return nil, fmt.Errorf("outgoing webhook %s: %w: a secret is required", o.Name, release.ErrInvalid)
	}
	for _, f := range o.Events {
		if !validFilter(f) {
			return nil, fmt.Errorf("outgoing webhook %s: %w: event filter %q is not *, <type>.*, <type>.<Reason> or <Reason>", o.Name, release.ErrInvalid, f)
		}
	}
	setDefaults(&o, u)
	n := &Notifier{o: o, queue: make(chan delivery, o.QueueSize)}
	if o.Metrics != nil {
		if err := n.register(o.Metrics); err != nil {
			return nil, fmt.Errorf("outgoing webhook %s: metrics: %w", o.Name, err)
		}
	}
	return n, nil
}

func setDefaults(o *Options, u *url.URL) {
	if o.Name == "" {
		o.Name = u.Hostname()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.BaseDelay, time.Second)
	def(&o.MaxDelay, time.Minute)
	def(&o.MaxRetryAfter, 10*time.Minute)
	def(&o.Timeout, 10*time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.HTTP == nil {
		// A redirected POST becomes a GET without a body; refuse to follow.
		o.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Notifier) register(reg prometheus.Registerer) error {
	for result, c := range map[string]*atomic.Uint64{"delivered": &n.delivered, "rejected": &n.rejected, "gave_up": &n.gaveUp, "dropped": &n.dropped} {
		err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "shipbot_outgoing_webhook_events_total",
			Help:        "Events for outgoing webhooks by endpoint and result (delivered, rejected, gave_up, dropped).",
			ConstLabels: prometheus.Labels{"endpoint": n.o.Name, "result": result},
		}, func() float64 { return float64(c.Load()) }))
		if err != nil {
			return err
		}
	}
	return nil
}

// NotifyRelease queues a release event.
func (n *Notifier) NotifyRelease(_ context.Context, e release.Event) error {
	n.enqueue(FromRelease(e), e.ID)
	return nil
}

// NotifyDeploy queues a deploy or preview event.
func (n *Notifier) NotifyDeploy(_ context.Context, e deployer.Event) error {
	n.enqueue(FromDeployer(e, n.o.Now()), "")
	return nil
}

// Releases adapts n to release.Notifier.
func (n *Notifier) Releases() release.Notifier { return release.NotifierFunc(n.NotifyRelease) }

// Deploys adapts n to deployer.Notifier.
func (n *Notifier) Deploys() deployer.Notifier { return deployer.NotifierFunc(n.NotifyDeploy) }

// Stats counts what became of the events so far.
type Stats struct{ Delivered, Rejected, GaveUp, Dropped uint64 }

// Stats reports the counters that the metrics export.
func (n *Notifier) Stats() Stats {
	return Stats{n.delivered.Load(), n.rejected.Load(), n.gaveUp.Load(), n.dropped.Load()}
}

// enqueue queues e for delivery. id, when set, is the engine's id of the
// event, which it sends again after a restart if shipbot died before it
// knew e was queued: the delivery goes by that id, so that a receiver that
// drops repeated X-Shipbot-Delivery values drops that one too.
func (n *Notifier) enqueue(e Event, id string) {
	if !n.wants(e.Name()) {
		return
	}
	body, err := json.Marshal(e)
	if err != nil {
		n.o.Log.Error("outgoing webhook: encode event", "endpoint", n.o.Name, "event", e.Name(), "err", err)
		return
	}
	if id == "" {
		id = newID()
	}
	d := delivery{id: id, event: e.Name(), body: body}
	select {
	case n.queue <- d:
	default:
		n.dropped.Add(1)
		n.o.Log.Warn("outgoing webhook: queue full; event dropped", "endpoint", n.o.Name, "event", d.event, "id", e.ID, "queue", n.o.QueueSize)
	}
}

func validFilter(f string) bool {
	t, reason, dotted := strings.Cut(f, ".")
	switch {
	case f == "*":
		return true
	case !dotted:
		return f != "" && !strings.ContainsAny(f, "* ")
	}
	return (t == TypeRelease || t == TypeDeploy || t == TypePreview) && reason != "" && (reason == "*" || !strings.ContainsAny(reason, "*. "))
}

// wants reports whether a filter selects the event named "<type>.<Reason>".
func (n *Notifier) wants(name string) bool {
	if len(n.o.Events) == 0 {
		return true
	}
	t, reason, _ := strings.Cut(name, ".")
	for _, f := range n.o.Events {
		if f == "*" || f == name || f == reason || f == t+".*" {
			return true
		}
	}
	return false
}

// Run delivers queued events, in order, until ctx ends; what is still
// queued then is dropped and logged.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			if left := len(n.queue); left > 0 {
				n.dropped.Add(uint64(left))
				n.o.Log.Warn("outgoing webhook: stopping with events undelivered", "endpoint", n.o.Name, "events", left)
			}
			return nil
		case d := <-n.queue:
			n.deliver(ctx, d)
		}
	}
}

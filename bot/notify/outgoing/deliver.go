package outgoing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	HeaderEvent     = "X-Shipbot-Event"     // e.g. release.Paused
	HeaderDelivery  = "X-Shipbot-Delivery"  // unique per event, the same on every retry
	HeaderTimestamp = "X-Shipbot-Timestamp" // unix seconds of this attempt
	HeaderSignature = "X-Shipbot-Signature" // sha256=<hex>
	HeaderAttempt   = "X-Shipbot-Attempt"   // 1 for the first try
)

// Sign is the X-Shipbot-Signature of a delivery:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + delivery + "." + body)).
// Covering the timestamp lets receivers refuse replays of old deliveries;
// covering the delivery id keeps a replay from passing as a new event.
func Sign(secret, timestamp, delivery string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "." + delivery + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is what Verify returns for a delivery it cannot trust.
var ErrBadSignature = errors.New("bad webhook signature")

// Verify checks a received delivery, for receivers written in Go: the
// signature, in constant time, and a timestamp within tolerance of now.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	want := Sign(secret, ts, h.Get(HeaderDelivery), body)
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(want)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now", ErrBadSignature, d.Round(time.Second))
	}
	return nil
}

// outcome is what one attempt came to.
type outcome struct {
	ok         bool
	retry      bool
	retryAfter time.Duration
	detail     string // status or error, for the log
}

// deliver tries d until it is delivered, refused, or out of attempts.
func (n *Notifier) deliver(ctx context.Context, d delivery) {
	for attempt := 1; ; attempt++ {
		res := n.attempt(ctx, d, attempt)
		log := n.o.Log.With("endpoint", n.o.Name, "event", d.event, "delivery", d.id, "attempt", attempt, "result", res.detail)
		switch {
		case res.ok:
			n.delivered.Add(1)
			if attempt > 1 {
				log.Info("outgoing webhook delivered after retries")
			}
			return
		case ctx.Err() != nil:
			n.dropped.Add(1)
			return
		case !res.retry:
			n.rejected.Add(1)
			log.Warn("outgoing webhook refused; not retrying")
			return
		case attempt >= n.o.MaxAttempts:
			n.gaveUp.Add(1)
			log.Error("outgoing webhook: giving up", "attempts", attempt)
			return
		}
		wait := n.backoff(attempt)
		if res.retryAfter > 0 {
			if res.retryAfter > n.o.MaxRetryAfter {
				n.gaveUp.Add(1)
				log.Error("outgoing webhook: giving up; receiver asked to wait longer than maxRetryAfter", "retryAfter", res.retryAfter)
				return
			}
			wait = res.retryAfter
		}
		log.Debug("outgoing webhook: will retry", "in", wait)
		if err := n.o.Sleep(ctx, wait); err != nil {
			n.dropped.Add(1)
			return
		}
	}
}

// attempt posts d once, signed with this attempt's timestamp.
func (n *Notifier) attempt(ctx context.Context, d delivery, attempt int) outcome {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.o.URL, bytes.NewReader(d.body))
	if err != nil {
		return outcome{detail: "bad request"}
	}
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "shipbot-webhook/1")
	h.Set(HeaderEvent, d.event)
	h.Set(HeaderDelivery, d.id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	h.Set(HeaderSignature, Sign(n.o.Secret, ts, d.id, d.body))
	resp, err := n.o.HTTP.Do(req)
	if err != nil {
		return outcome{retry: true, detail: redact(err)}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	res := outcome{detail: "HTTP " + strconv.Itoa(code)}
	switch {
	case code >= 200 && code < 300:
		res.ok = true
	case code == http.StatusTooManyRequests || code >= 500:
		res.retry = true
		res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), n.o.Now())
	}
	return res
}

// redact drops the URL from a transport error: it may hold a token.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// backoff before try attempt+1: BaseDelay·2^(attempt-1), capped at
// MaxDelay, of which a random half is taken off so that endpoints that
// failed together do not retry together.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.o.MaxDelay
	if shift := attempt - 1; shift < 30 {
		d = min(n.o.BaseDelay<<shift, n.o.MaxDelay)
	}
	return d/2 + time.Duration(n.o.Jitter()*float64(d/2))
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Seconds beyond what a Duration holds would wrap around, maybe to
		// a short wait; they mean "much too long", so say so.
		if s > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// newID is a random UUID (version 4) naming one delivery.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

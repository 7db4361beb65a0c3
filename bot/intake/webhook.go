// Package intake is shipbot's GitLab intake: it authenticates a delivery,
// checks that it parses, stores it durably in the inbox and answers. The
// inbox worker does everything else, so GitLab's 10-second timeout and its
// redeliveries never cause a second deploy.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
)

// Path is where GitLab posts.
const Path = "/webhooks/gitlab"

// Inbox is where accepted deliveries are kept until the worker takes them.
type Inbox interface {
	Accept(ctx context.Context, d store.Delivery) (store.Delivery, bool, error)
}

// Handler receives GitLab webhooks.
type Handler struct {
	// Secret is the X-Gitlab-Token of projects without one of their own.
	Secret string
	// Projects are those with their own secret or a pinned id; see admit.
	Projects []config.HookProject
	MaxBody  int64
	Inbox    Inbox
	Log      *slog.Logger
	Now      func() time.Time
	// Accepted is called after a new delivery is stored, to wake the worker.
	Accepted func()
	metrics  *metrics
}

type metrics struct {
	received *prometheus.CounterVec
}

// Results a delivery ends in, the values of the result label.
const (
	resultAccepted  = "accepted"
	resultDuplicate = "duplicate"
	resultIgnored   = "ignored"
	resultToken     = "rejected_token"
	resultProject   = "rejected_project"
	resultTooLarge  = "rejected_too_large"
	resultMalformed = "rejected_malformed"
	// resultUnavailable: the store could not be reached; answered 503.
	resultUnavailable = "unavailable"
	resultError       = "error"
)

// NewHandler returns a handler with h's settings and collaborators, and
// registers its metrics with reg. Its clock is time.Now when h.Now is nil.
func NewHandler(h Handler, reg prometheus.Registerer) *Handler {
	m := &metrics{received: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shipbot_webhooks_total",
		Help: "GitLab webhook deliveries by event and result (accepted, duplicate, ignored, rejected_*).",
	}, []string{"event", "result"})}
	reg.MustRegister(m.received)
	if h.Now == nil {
		h.Now = time.Now
	}
	h.metrics = m
	return &h
}

// Register mounts the handler on e.
func (h *Handler) Register(e *echo.Echo) { e.POST(Path, h.Receive) }

type reply struct {
	Status string `json:"status"`
	Seq    uint64 `json:"seq,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Receive handles one delivery.
func (h *Handler) Receive(c echo.Context) error {
	r := c.Request()
	event := r.Header.Get("X-Gitlab-Event")
	label := event
	if !gitlabevent.Supported(event) {
		label = "other"
	}
	// The body is read before the token is checked: which secret admits a
	// delivery depends on the project it names.
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, h.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return h.answer(c, label, resultTooLarge, http.StatusRequestEntityTooLarge, reply{Status: "rejected", Error: "body exceeds the size limit"})
	case err != nil:
		return h.answer(c, label, resultError, http.StatusBadRequest, reply{Status: "rejected", Error: "could not read body"})
	}
	// Read once for both: the project, to pick the secret, and the
	// object_kind, which decoding checks after the token.
	head := gitlabevent.ReadHead(body)
	named := namedBy(head)
	if !h.admit(r.Header.Get("X-Gitlab-Token"), named) {
		return h.answer(c, label, resultToken, http.StatusUnauthorized, reply{Status: "rejected", Error: "missing or wrong X-Gitlab-Token"})
	}
	if pinned, ok := h.pinned(named); ok {
		h.Log.Warn("webhook refused: its project id is not the one pinned to its path", "event", event, "project", named.Path, "id", named.ID, "pinned", pinned)
		return h.answer(c, label, resultProject, http.StatusForbidden, reply{Status: "rejected", Error: "the project id does not match the one configured for its path"})
	}
	if !gitlabevent.Supported(event) {
		h.Log.Debug("ignoring webhook event", "event", event)
		return h.answer(c, label, resultIgnored, http.StatusAccepted, reply{Status: "ignored"})
	}
	if _, err := head.Decode(event); err != nil {
		if errors.Is(err, gitlabevent.ErrUnsupported) {
			return h.answer(c, label, resultIgnored, http.StatusAccepted, reply{Status: "ignored"})
		}
		h.Log.Warn("malformed webhook", "event", event, "err", err)
		return h.answer(c, label, resultMalformed, http.StatusBadRequest, reply{Status: "rejected", Error: err.Error()})
	}
	d, dup, err := h.Inbox.Accept(r.Context(), store.Delivery{Key: deliveryKey(r, event, body), Event: event, Body: body, ReceivedAt: h.Now()})
	if errors.Is(err, store.ErrUnavailable) {
		// Nothing was stored: the sender is to try again, as GitLab's
		// redelivery or a load balancer's next replica does.
		h.Log.Warn("store webhook: store unavailable", "event", event, "err", err)
		c.Response().Header().Set("Retry-After", "5")
		return h.answer(c, label, resultUnavailable, http.StatusServiceUnavailable, reply{Status: "error", Error: "store unavailable; try again"})
	}
	if err != nil {
		h.Log.Error("store webhook", "event", event, "err", err)
		return h.answer(c, label, resultError, http.StatusInternalServerError, reply{Status: "error", Error: "internal error"})
	}
	if dup {
		h.Log.Info("duplicate webhook acknowledged", "event", event, "key", d.Key, "seq", d.Seq)
		return h.answer(c, label, resultDuplicate, http.StatusOK, reply{Status: "duplicate", Seq: d.Seq})
	}
	if h.Accepted != nil {
		h.Accepted()
	}
	return h.answer(c, label, resultAccepted, http.StatusOK, reply{Status: "accepted", Seq: d.Seq})
}

func (h *Handler) answer(c echo.Context, event, result string, code int, body reply) error {
	h.metrics.received.WithLabelValues(event, result).Inc()
	return c.JSON(code, body)
}

// deliveryKey picks what makes a delivery unique: the caller's
// Idempotency-Key, else GitLab's per-delivery UUID (the same on a manual
// redelivery), else the content itself.
func deliveryKey(r *http.Request, event string, body []byte) string {
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		return "idem:" + k
	}
	if k := r.Header.Get("X-Gitlab-Event-UUID"); k != "" {
		return "uuid:" + k
	}
	sum := sha256.New()
	sum.Write([]byte(event))
	sum.Write([]byte{0})
	sum.Write(body)
	return "sha256:" + hex.EncodeToString(sum.Sum(nil))
}

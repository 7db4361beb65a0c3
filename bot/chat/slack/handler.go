package slack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/slack-go/slack"
)

// Path is where Slack POSTs button clicks in HTTP mode: the Slack app's
// Interactivity Request URL is shipbot's public URL plus Path.
const Path = "/chat/slack/interactions"

const (
	// maxBody caps an interaction payload; a click on a full message is a
	// few tens of KiB.
	maxBody = 1 << 20
	// maxSkew is how far a request's timestamp may be from now: Slack's own
	// advice, and what makes a captured request useless after five minutes.
	maxSkew = 5 * time.Minute
)

// errUnsigned marks a request that does not prove it comes from Slack.
var errUnsigned = errors.New("not signed by Slack")

// errReplayed marks a correctly signed request that was already accepted.
var errReplayed = errors.New("a replay of a request already accepted")

// Handler receives interactions and the slash command over HTTP. It
// verifies Slack's signature, records the intent and answers well within
// Slack's 3 s; it never waits for the engine.
type Handler struct {
	secret string
	now    func() time.Time
	d      *dispatcher
	log    *slog.Logger

	// claims names the requests accepted, each until its timestamp leaves
	// the window: a signed click captured on its way (a TLS-terminating
	// proxy's log, say) must not act a second time, e.g. continue the next
	// stage once the release pauses there, even after a restart. Only
	// verified requests enter, so it holds at most Slack's own traffic of
	// ten minutes.
	claims    claims
	mu        sync.Mutex
	lastPrune time.Time
}

// claims is where accepted requests are remembered; *store.Store is it.
type claims interface {
	Claim(key string, now, until time.Time) (bool, error)
	PruneClaims(now time.Time) (int, error)
}

// pruneEvery is how often ended claims are deleted.
const pruneEvery = 10 * time.Minute

// Register mounts the handler at Path, and the slash command at CommandsPath.
func (h *Handler) Register(e *echo.Echo) {
	e.POST(Path, h.interactions)
	e.POST(CommandsPath, h.commands)
}

func (h *Handler) interactions(c echo.Context) error {
	body, status := h.accept(c, "interaction")
	if status != 0 {
		return c.NoContent(status)
	}
	cb, err := parseInteraction(body)
	if err != nil {
		h.log.Warn("slack: unreadable interaction", "err", err)
		return c.NoContent(http.StatusBadRequest)
	}
	h.d.dispatch(c.Request().Context(), cb)
	return c.NoContent(http.StatusOK)
}

// commands answers the /shipbot slash command. Its reply is the response
// body, which Slack shows only to the person who typed it.
func (h *Handler) commands(c echo.Context) error {
	body, status := h.accept(c, "slash command")
	if status != 0 {
		return c.NoContent(status)
	}
	req := c.Request()
	req.Body = io.NopCloser(bytes.NewReader(body))
	sc, err := slack.SlashCommandParse(req)
	if err != nil || sc.UserID == "" {
		h.log.Warn("slack: unreadable slash command", "err", err)
		return c.NoContent(http.StatusBadRequest)
	}
	text := h.d.slash(req.Context(), slashCommand{userID: sc.UserID, text: sc.Text})
	return c.JSON(http.StatusOK, ephemeral(text))
}

// accept reads a request's body, once it is signed by Slack and new. It
// returns the status to answer with instead when it is not.
func (h *Handler) accept(c echo.Context, what string) ([]byte, int) {
	req := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge
	case err != nil:
		return nil, http.StatusBadRequest
	}
	if err := h.verify(req.Header, body); err != nil {
		h.log.Warn("slack: "+what+" refused", "remote", c.RealIP(), "err", err)
		return nil, http.StatusUnauthorized
	}
	switch first, err := h.first(req.Header, body); {
	case err != nil:
		h.log.Error("slack: "+what+" not taken: the store did not answer", "err", err)
		return nil, http.StatusServiceUnavailable
	case !first:
		h.log.Warn("slack: "+what+" refused", "remote", c.RealIP(), "err", errReplayed)
		return nil, http.StatusUnauthorized
	}
	return body, 0
}

// ephemeral is a slash command's reply that only its author sees.
func ephemeral(text string) *slack.Msg {
	return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: text}
}

// verify checks Slack's v0 signature, an HMAC-SHA256 of "v0:timestamp:body"
// with the signing secret, and that the timestamp is within maxSkew of now.
// slack-go checks the age too, against the wall clock; checking it here
// against the injected clock keeps the rule ours and testable.
func (h *Handler) verify(header http.Header, body []byte) error {
	ts, err := strconv.ParseInt(header.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no timestamp", errUnsigned)
	}
	if age := h.now().Sub(time.Unix(ts, 0)); age > maxSkew || age < -maxSkew {
		return fmt.Errorf("%w: timestamp is %s off", errUnsigned, age.Round(time.Second))
	}
	sv, err := slack.NewSecretsVerifier(header, h.secret)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnsigned, err)
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	if err := sv.Ensure(); err != nil {
		return fmt.Errorf("%w: %w", errUnsigned, err)
	}
	return nil
}

// first records a verified request and reports whether it is new. It is
// named by what the signature covers, the timestamp and the body, rather
// than by the signature's text, which takes upper-case hex as well.
func (h *Handler) first(header http.Header, body []byte) (bool, error) {
	raw := header.Get("X-Slack-Request-Timestamp")
	ts, _ := strconv.ParseInt(raw, 10, 64) // verify parsed it
	sum := sha256.Sum256(append([]byte(raw+":"), body...))
	now := h.now()
	h.prune(now)
	return h.claims.Claim("slack/request/"+hex.EncodeToString(sum[:]), now, time.Unix(ts, 0).Add(maxSkew))
}

// prune deletes ended claims, at most every pruneEvery.
func (h *Handler) prune(now time.Time) {
	h.mu.Lock()
	due := now.Sub(h.lastPrune) >= pruneEvery
	if due {
		h.lastPrune = now
	}
	h.mu.Unlock()
	if !due {
		return
	}
	if _, err := h.claims.PruneClaims(now); err != nil {
		h.log.Warn("slack: prune replay memory", "err", err)
	}
}

// parseInteraction reads the form Slack posts: one field, payload, holding
// the interaction as JSON.
func parseInteraction(body []byte) (slack.InteractionCallback, error) {
	var cb slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return cb, fmt.Errorf("form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return cb, errors.New("no payload")
	}
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return cb, fmt.Errorf("payload: %w", err)
	}
	return cb, nil
}

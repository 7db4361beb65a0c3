package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// ActionsPath is where button links point; the token follows it.
const ActionsPath = "/chat/actions/"

// Acter records an intent after checking the actor may ask for it;
// *ops.Service is the one implementation.
type Acter interface {
	Act(ctx context.Context, a ops.Actor, id string, in release.Intent) (release.Release, error)
}

var _ Acter = (*ops.Service)(nil)

// Releases reads a release for the confirmation page.
type Releases interface {
	Get(ctx context.Context, id string) (release.Release, error)
}

// Notes is where used links are remembered; *store.Store implements it.
type Notes interface {
	PutNoteOnce(key string, value []byte) (bool, error)
	PutNote(key string, value []byte) error
	Note(key string) ([]byte, error)
	DeleteNote(key string) error
}

var _ Notes = (*store.Store)(nil)

// HandlerOptions configure the confirmation pages.
type HandlerOptions struct {
	Tokens   *Tokens  // required; the same as the Notifier's
	Ops      Acter    // required
	Releases Releases // required
	Notes    Notes    // required
	// Identity says who is confirming: sign-in with GitLab (*signin.SignIn),
	// or a trusted proxy's header (signin.Proxy); required.
	Identity signin.Identifier
	// Identities resolves the people a proxy names to GitLab users; a
	// person signed in with GitLab needs no resolving.
	Identities Identities
	// PublicURL is the origin browsers use; a POST whose Origin header names
	// another is refused. When empty, the Origin's host must be the request's.
	PublicURL string
	// Recorded, when set, is called after an intent is recorded, to step the
	// release now rather than at its next scheduled step.
	Recorded func(releaseID string)
	Now      func() time.Time // time.Now when nil
	Log      *slog.Logger     // slog.Default() when nil
}

// Handler serves the pages behind button links: GET shows what the link
// would do and never acts, since chat apps and scanners fetch links on
// their own; POST acts once.
type Handler struct {
	o      HandlerOptions
	origin string // scheme://host of PublicURL
}

// NewHandler checks o.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Tokens == nil || o.Ops == nil || o.Releases == nil || o.Notes == nil || o.Identity == nil {
		return nil, fmt.Errorf("dingtalk handler: %w: tokens, ops, releases, notes and identity are required", release.ErrInvalid)
	}
	h := &Handler{o: o}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("dingtalk handler: %w: publicURL %q is not an absolute URL", release.ErrInvalid, o.PublicURL)
		}
		h.origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	if h.o.Now == nil {
		h.o.Now = time.Now
	}
	if h.o.Log == nil {
		h.o.Log = slog.Default()
	}
	return h, nil
}

// Register mounts the pages on e.
func (h *Handler) Register(e *echo.Echo) {
	e.GET(ActionsPath+":token", h.Confirm)
	e.POST(ActionsPath+":token", h.Act)
}

// usedLink is the record of a link that acted, under usedKey(nonce).
type usedLink struct {
	Release string    `json:"release"`
	Intent  string    `json:"intent"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Done    bool      `json:"done"` // false while the claim is being acted on
}

func usedKey(nonce string) string { return UsedNotes + nonce }

// UsedNotes prefixes the store notes that say a one-time link was used;
// they must be kept at least as long as a link works.
const UsedNotes = "dingtalk/used/"

// maxComment bounds the optional comment kept with the intent.
const maxComment = 500

// Confirm shows the release and the action, with a form to confirm it.
func (h *Handler) Confirm(c echo.Context) error {
	a, p, ok := h.open(c)
	if !ok {
		return h.render(c, p)
	}
	ctx := c.Request().Context()
	r, err := h.o.Releases.Get(ctx, a.Release)
	if err != nil {
		return h.render(c, h.failure(a, release.Release{}, err))
	}
	p = confirmPage(a, r, h.o.Now())
	if used, ok := h.used(a); ok {
		return h.render(c, usedPage(h.view(r), used))
	}
	if err := h.applies(a, r); err != nil {
		return h.render(c, conflictPage(a, h.view(r), err))
	}
	actor, err := h.actor(c.Request())
	if errors.Is(err, signin.ErrNoPerson) {
		// Signing in comes back here; the link's token stays with shipbot.
		h.o.Log.Info("dingtalk: confirmation page without identity", "release", a.Release, "err", err)
		return h.o.Identity.Challenge(c, c.Request().URL.Path)
	}
	if err != nil {
		p.Status, p.Tone, p.Form = http.StatusUnauthorized, toneWarn, false
		p.Message = "shipbot cannot tell who you are, so this action would be refused."
		if errkind.Of(err) == errkind.Forbidden {
			p.Status, p.Message = errkind.HTTPStatus(err), errkind.Text(err)
		}
		return h.render(c, p)
	}
	p.Actor = actor.Username
	return h.render(c, p)
}

// Act authenticates the person, claims the link and records the intent
// through ops, which checks that they may.
func (h *Handler) Act(c echo.Context) error {
	req := c.Request()
	a, p, ok := h.open(c)
	if !ok {
		return h.render(c, p)
	}
	if h.crossSite(req) {
		return h.render(c, page{Status: http.StatusForbidden, Tone: toneError, Title: "Refused",
			Heading: "Refused", Message: "This form can only be sent from shipbot's own page."})
	}
	actor, err := h.actor(req)
	if errors.Is(err, signin.ErrNoPerson) {
		h.o.Log.Warn("dingtalk: action without identity", "release", a.Release, "err", err)
		return h.render(c, page{Status: http.StatusUnauthorized, Tone: toneError, Title: "Who are you?",
			Heading: "shipbot cannot tell who you are", Message: "Nothing was done. Open the link again to sign in, then confirm.",
			Link: path.Base(req.URL.Path), LinkText: "Open the link again"}) // relative: the same link, wherever shipbot is mounted
	}
	if err != nil {
		return h.render(c, h.failure(a, release.Release{}, err))
	}
	ctx := req.Context()
	r, err := h.o.Releases.Get(ctx, a.Release)
	if err != nil {
		return h.render(c, h.failure(a, release.Release{}, err))
	}
	if used, ok := h.used(a); ok {
		return h.render(c, usedPage(h.view(r), used))
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, 16<<10)
	if a.Ask {
		n, err := strconv.Atoi(strings.TrimSpace(c.FormValue("percent")))
		if err != nil || n < 1 || n > 100 {
			return h.render(c, badPercentPage(h.view(r), path.Base(req.URL.Path)))
		}
		a.Percent = n
	}
	if err := h.applies(a, r); err != nil {
		return h.render(c, conflictPage(a, h.view(r), err)) // before the claim, so the link stays usable
	}
	comment := strings.TrimSpace(c.FormValue("comment"))
	if utf8.RuneCountInString(comment) > maxComment {
		comment = string([]rune(comment)[:maxComment])
	}
	now := h.o.Now()
	claim := usedLink{Release: a.Release, Intent: a.Intent().String(), Actor: actor.Username, At: now}
	if won, err := h.claim(a, claim); err != nil {
		return h.render(c, h.failure(a, r, err))
	} else if !won {
		used, _ := h.used(a)
		return h.render(c, usedPage(h.view(r), used))
	}
	in := a.Intent()
	in.At, in.Comment = now, comment
	out, err := h.o.Ops.Act(ctx, actor, a.Release, in)
	if err != nil {
		// Nothing was recorded: free the link for someone who may use it.
		if derr := h.o.Notes.DeleteNote(usedKey(a.Nonce)); derr != nil {
			h.o.Log.Error("dingtalk: release link claim", "release", a.Release, "err", derr)
		}
		return h.render(c, h.failure(a, r, err))
	}
	claim.Done = true
	if raw, err := json.Marshal(claim); err == nil {
		if err := h.o.Notes.PutNote(usedKey(a.Nonce), raw); err != nil {
			h.o.Log.Error("dingtalk: mark link used", "release", a.Release, "err", err)
		}
	}
	if h.o.Recorded != nil {
		h.o.Recorded(a.Release)
	}
	return h.render(c, donePage(a, h.view(out), actor.Username))
}

// open reads the token; on failure it returns the page to show instead.
func (h *Handler) open(c echo.Context) (Action, page, bool) {
	setHeaders(c.Response().Header())
	a, err := h.o.Tokens.Parse(c.Param("token"))
	switch {
	case errors.Is(err, ErrTokenExpired):
		return a, page{Status: http.StatusGone, Tone: toneWarn, Title: "Link expired", Heading: "This link has expired",
			Message: fmt.Sprintf("%s links work for %s after their message. Use the newest message in the group, or the shipbot CLI.",
				a.Label(), h.o.Tokens.ttl)}, false
	case err != nil:
		return a, page{Status: http.StatusForbidden, Tone: toneError, Title: "Invalid link", Heading: "This link is not valid",
			Message: "It may have been cut short or changed. Use the buttons of a message in the group."}, false
	}
	return a, page{}, true
}

// applies says whether the release still takes the action the link names.
func (h *Handler) applies(a Action, r release.Release) error {
	if a.stageBound() && r.Stage != a.Stage && !r.Phase.Terminal() {
		return fmt.Errorf("%w: the release has moved on from stage %d/%d since this message; use the newest one",
			release.ErrConflict, min(a.Stage+1, len(r.Stages)), len(r.Stages))
	}
	return allowed(r, a, h.o.Now())
}

// claim takes the link for this POST; exactly one of two racing POSTs wins.
func (h *Handler) claim(a Action, u usedLink) (bool, error) {
	raw, err := json.Marshal(u)
	if err != nil {
		return false, err
	}
	return h.o.Notes.PutNoteOnce(usedKey(a.Nonce), raw)
}

// used reads who used the link, if anyone did.
func (h *Handler) used(a Action) (usedLink, bool) {
	raw, err := h.o.Notes.Note(usedKey(a.Nonce))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.o.Log.Error("dingtalk: read link record", "release", a.Release, "err", err)
		}
		return usedLink{}, false
	}
	var u usedLink
	_ = json.Unmarshal(raw, &u)
	return u, true
}

// crossSite reports a POST that a browser says came from another site.
// The token in the URL already keeps other sites from forging a click;
// this refuses one that got hold of a link anyway.
func (h *Handler) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	if h.origin != "" {
		return !strings.EqualFold(o, h.origin)
	}
	u, err := url.Parse(o)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

// failure frames for a page what errkind says of err: the status, the kind
// and the words. An internal error's details go to the log only.
func (h *Handler) failure(a Action, r release.Release, err error) page {
	status, text := errkind.HTTPStatus(err), errkind.Text(err)
	switch errkind.Of(err) {
	case errkind.NeedsApproval:
		return page{Status: status, Tone: toneWarn, Title: "Approval counted", Heading: "Your approval to " + strings.ToLower(a.Label()) + " this release is counted",
			Message: text + ". It is kept in the release's history; the release moves on once enough people approve.", Release: h.view(r)}
	case errkind.Forbidden:
		return page{Status: status, Tone: toneError, Title: "Not allowed", Heading: "You may not " + strings.ToLower(a.Label()) + " this release",
			Message: text + ". Nothing was recorded.", Release: h.view(r)}
	case errkind.Conflict, errkind.Invalid:
		return conflictPage(a, h.view(r), err)
	case errkind.NotFound:
		return page{Status: status, Tone: toneError, Title: "Not found", Heading: "Release " + a.Release + " does not exist"}
	}
	h.o.Log.Error("dingtalk: release action", "release", a.Release, "intent", a.Kind, "err", err)
	return page{Status: status, Tone: toneError, Title: "Error", Heading: "Something went wrong",
		Message: "Nothing was recorded: " + text + ". Try again, or use the CLI.", Release: h.view(r)}
}

func (h *Handler) view(r release.Release) *releaseView { return view(r, h.o.Now()) }

// setHeaders keeps the token out of Referer headers and caches, and the
// confirm button out of other sites' frames.
func setHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Robots-Tag", "noindex")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

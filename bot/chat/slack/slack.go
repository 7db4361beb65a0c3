// Package slack is shipbot's Slack surface. It keeps one message per release
// in its environment's channel, edited in place as the release moves, with
// buttons for the actions its current phase allows; a click records an
// intent through ops.Service and nothing more. A short message per merge
// request says whether its preview is ready or failed. The /shipbot slash
// command locks, unlocks and deploys a version through ops as well
// (slash.go). Clicks and commands arrive over HTTP (Handler) or Socket Mode
// (SocketMode), and both end in the same dispatch.
//
// No slack-go type travels past this package: callers see releases, intents
// and ops actors.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/slack-go/slack"

	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Mode says how Slack delivers button clicks.
type Mode string

// Modes, as written in shipbot.yaml's slack.mode.
const (
	ModeHTTP   Mode = "http"   // Slack POSTs to Path; needs SigningSecret and a public URL
	ModeSocket Mode = "socket" // shipbot dials Slack over a WebSocket; needs AppToken
)

// DefaultTimeout bounds every call to Slack's API, so a slow Slack never
// holds the engine or a click for long.
const DefaultTimeout = 10 * time.Second

// Ops records intents; *ops.Service is the one implementation.
type Ops interface {
	Act(ctx context.Context, a ops.Actor, releaseID string, in release.Intent) (release.Release, error)
}

var _ Ops = (*ops.Service)(nil)

// Identities resolves a Slack user to the GitLab account they act as. With
// an empty email it resolves by the Slack id alone, and an id that needs the
// email to be linked gives an error wrapping ops.ErrNotMapped.
type Identities interface {
	Resolve(ctx context.Context, slackUserID, email string) (ops.Actor, error)
}

// api is the part of Slack's Web API shipbot uses.
type api interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
	OpenViewContext(ctx context.Context, triggerID string, view slack.ModalViewRequest) (*slack.ViewResponse, error)
}

var _ api = (*slack.Client)(nil)

// Options configure the Slack surface. The first seven mirror shipbot.yaml's
// slack block; the rest are collaborators.
type Options struct {
	BotToken      string // xoxb-…: posts and edits messages, reads users' emails
	SigningSecret string // verifies HTTP interactions (mode http)
	AppToken      string // xapp-…: opens the Socket Mode connection (mode socket)
	Channel       string // channel id (C…) or name for release and preview messages
	Mode          Mode   // ModeHTTP when empty
	// Channels routes an environment's messages to its own channel; an
	// environment not in it uses Channel.
	Channels map[string]string
	// MinSeverity holds back thread replies of events below it; the
	// message itself is always kept current. notify.Info when empty.
	MinSeverity notify.Severity

	Store      *store.Store     // keeps release → message, so a restart edits the same message
	Ops        Ops              // records the intents clicks ask for, after its authorization check
	Identities Identities       // who a clicker is on GitLab
	Governance Governance       // what the /shipbot slash command acts through
	Log        *slog.Logger     // slog.Default() when nil
	HTTP       *http.Client     // for Slack's API and response URLs; http.DefaultClient when nil
	APIURL     string           // Slack's API base URL, e.g. a test server's; Slack's own when empty
	Now        func() time.Time // time.Now when nil
	Timeout    time.Duration    // per Slack call; DefaultTimeout when 0
}

// App is the Slack surface, wired for its mode.
type App struct {
	Notifier *Notifier   // implements release.Notifier
	Handler  *Handler    // HTTP interactions; nil in socket mode
	Socket   *SocketMode // Socket Mode interactions; nil in HTTP mode
	previews *previewNotifier
	dispatch *dispatcher
}

// New checks o and builds the whole surface: the Poster and the interaction
// receiver o.Mode asks for, acting through o.Ops.
func New(o Options) (*App, error) {
	p, err := NewPoster(o)
	if err != nil {
		return nil, err
	}
	return p.Interactive(o.Ops, o.Identities, o.Governance)
}

// Poster is the half of the Slack surface that posts: one message per
// release and one per merge request preview. It needs neither ops nor
// identities, so it can be built before the engines that tell it what
// happens, and the clicks half after them.
type Poster struct {
	Notifier *Notifier // implements release.Notifier
	previews *previewNotifier
	api      *slack.Client
	o        Options
}

// NewPoster checks o's posting settings and builds the Poster; o.Ops,
// o.Identities and o.Governance are not used.
func NewPoster(o Options) (*Poster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	api := slack.New(o.BotToken, slack.OptionAPIURL(o.APIURL), slack.OptionHTTPClient(o.HTTP), slack.OptionAppLevelToken(o.AppToken))
	return &Poster{Notifier: newNotifier(api, o), previews: newPreviewNotifier(api, o), api: api, o: o}, nil
}

// Interactive builds the receiver of button clicks for the Poster's
// messages, which records what they ask for through ops, as the clicker
// resolves to through ids, and of the /shipbot slash command, which acts
// through gov.
func (p *Poster) Interactive(ops Ops, ids Identities, gov Governance) (*App, error) {
	if ops == nil || ids == nil {
		return nil, errors.New("slack: ops and identities are required")
	}
	o := p.o
	d := &dispatcher{ops: ops, ids: ids, api: p.api, notifier: p.Notifier, http: o.HTTP, log: o.Log, timeout: o.Timeout, emails: newEmailCache(o.Now), gov: gov}
	a := &App{Notifier: p.Notifier, previews: p.previews, dispatch: d}
	switch o.Mode {
	case ModeHTTP:
		a.Handler = &Handler{secret: o.SigningSecret, now: o.Now, d: d, log: o.Log, claims: o.Store}
	case ModeSocket:
		a.Socket = newSocketMode(p.api, d, o.Log)
	}
	return a, nil
}

// withDefaults fills what o may leave out and rejects what it lacks.
func (o Options) withDefaults() (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeHTTP
	}
	var errs []error
	need := func(ok bool, what string) {
		if !ok {
			errs = append(errs, errors.New(what))
		}
	}
	need(o.BotToken != "", "botToken is required")
	need(o.Channel != "", "channel is required")
	for _, env := range slices.Sorted(maps.Keys(o.Channels)) {
		need(o.Channels[env] != "", fmt.Sprintf("channels.%s: a channel is required", env))
	}
	if sev, err := notify.ParseSeverity(string(o.MinSeverity)); err != nil {
		errs = append(errs, fmt.Errorf("minSeverity: %w", err))
	} else {
		o.MinSeverity = sev
	}
	need(o.Store != nil, "a store is required")
	switch o.Mode {
	case ModeHTTP:
		need(o.SigningSecret != "", "signingSecret is required in mode http")
	case ModeSocket:
		need(strings.HasPrefix(o.AppToken, "xapp-"), "an appToken (xapp-…) is required in mode socket")
	default:
		errs = append(errs, fmt.Errorf("mode %q is not http or socket", o.Mode))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("slack: %w", err)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.APIURL == "" {
		o.APIURL = slack.APIURL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o, nil
}

// Previews announces merge request previews as they become ready or fail;
// the engine's deploy and preview events go to it.
func (a *App) Previews() deployer.Notifier { return a.previews }

// Previews announces merge request previews as they become ready or fail.
func (p *Poster) Previews() deployer.Notifier { return p.previews }

// Register mounts the interaction and slash command endpoints in HTTP
// mode; in socket mode it does nothing.
func (a *App) Register(e *echo.Echo) {
	if a.Handler != nil {
		a.Handler.Register(e)
	}
}

// Run holds the Socket Mode connection until ctx ends; in HTTP mode it returns nil at once.
func (a *App) Run(ctx context.Context) error {
	if a.Socket == nil {
		return nil
	}
	return a.Socket.Run(ctx)
}

// Close waits for the replies and message refreshes that clicks started.
func (a *App) Close() { a.dispatch.wait() }

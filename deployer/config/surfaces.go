package config

import (
	"maps"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// minSecretLen is the least length of a secret shipbot checks requests
// against: the API token and the keys that sign links and sessions.
const minSecretLen = 32

// API configures the HTTP API under /api/v1.
type API struct {
	// Token is the bearer token every /api/v1 request must carry; when empty
	// the API is off, reads included, because release history names people.
	Token Secret `yaml:"token"`
}

// Slack modes: how Slack reaches shipbot with clicks and slash commands.
const (
	SlackModeHTTP   = "http"   // Slack POSTs to shipbot; requests are verified with the signing secret
	SlackModeSocket = "socket" // shipbot dials Slack over Socket Mode with an app-level token; no inbound port
)

// Slack configures the Slack app that posts release messages and takes clicks.
type Slack struct {
	BotToken      Secret `yaml:"botToken"`      // xoxb-...
	SigningSecret Secret `yaml:"signingSecret"` // required in http mode
	AppToken      Secret `yaml:"appToken"`      // xapp-..., required in socket mode
	Channel       string `yaml:"channel"`       // channel ID or name release messages go to
	Mode          string `yaml:"mode"`          // http (default) or socket
	// Channels routes the messages of an environment's releases and
	// previews to a channel of their own; other environments use Channel.
	Channels map[string]string `yaml:"channels"`
	// MinSeverity holds back thread replies below it: info (default),
	// warning or error. The release message itself is always kept current.
	MinSeverity string `yaml:"minSeverity"`
	// APIURL is the base of Slack's Web API, e.g. a proxy's
	// (https://slack-proxy.internal/api/); Slack's own when empty.
	APIURL string `yaml:"apiURL"`
}

// Severities, as written in slack.minSeverity; bot/notify defines what each means.
var severities = []string{"info", "warning", "error"}

// DingTalk configures a DingTalk custom robot. Robots cannot take clicks, so
// messages carry links back to shipbot's publicURL for confirmation.
type DingTalk struct {
	WebhookURL Secret   `yaml:"webhookURL"` // the robot's URL, access_token included
	Secret     Secret   `yaml:"secret"`     // the robot's signing secret (SEC...), when it has one
	LinkTTL    Duration `yaml:"linkTTL"`    // how long an action link in a message stays valid
	RateLimit  int      `yaml:"rateLimit"`  // messages per minute; DingTalk throttles a robot above 20
	// LinkSecret signs the action links; at least 32 bytes. Changing it
	// voids the links already sent.
	LinkSecret Secret `yaml:"linkSecret"`
	// Identity is how the confirmation pages learn who is confirming:
	// gitlab (the default) signs them in with GitLab (the signin section);
	// proxyHeader believes an authenticating proxy's X-Forwarded-User.
	Identity string `yaml:"identity"`
	// TrustedProxies are the addresses (CIDR) of that proxy, required with
	// identity: proxyHeader; requests from elsewhere are refused.
	TrustedProxies []string `yaml:"trustedProxies"`
}

// Proxies are TrustedProxies, parsed.
func (d *DingTalk) Proxies() []netip.Prefix { return prefixes(d.TrustedProxies) }

// Notify configures outgoing notifications other than chat.
type Notify struct {
	Webhooks []NotifyWebhook `yaml:"webhooks"`
	// RemindPaused announces a release again when it has waited for a
	// person this long, then every so often.
	RemindPaused RemindPaused `yaml:"remindPaused"`
}

// RemindPaused is the reminder schedule of paused releases.
type RemindPaused struct {
	After Duration `yaml:"after"` // 30m when unset
	Every Duration `yaml:"every"` // 1h when unset
	Off   bool     `yaml:"off"`   // no reminders
}

// NotifyWebhook receives release events as signed JSON POSTs.
type NotifyWebhook struct {
	Name   string   `yaml:"name"`
	URL    Secret   `yaml:"url"`    // a secret because such URLs often carry a token
	Secret Secret   `yaml:"secret"` // signs each body so the receiver can check it came from shipbot
	Events []string `yaml:"events"` // event reasons to send, e.g. Paused; all when empty
}

// User maps one person's chat identities to their GitLab user, whose project
// role decides what they may do.
type User struct {
	GitLab   string `yaml:"gitlab"`   // GitLab username
	Slack    string `yaml:"slack"`    // Slack user ID, e.g. U123ABC
	DingTalk string `yaml:"dingtalk"` // DingTalk staff ID
	Email    string `yaml:"email"`
}

// UserBySlack returns the user with the given Slack user ID.
func (c *Config) UserBySlack(id string) (User, bool) {
	return c.findUser(func(u User) bool { return id != "" && u.Slack == id })
}

// UserByDingTalk returns the user with the given DingTalk staff ID.
func (c *Config) UserByDingTalk(staffID string) (User, bool) {
	return c.findUser(func(u User) bool { return staffID != "" && u.DingTalk == staffID })
}

// UserByGitLab returns the user with the given GitLab username, ignoring case as GitLab does.
func (c *Config) UserByGitLab(username string) (User, bool) {
	return c.findUser(func(u User) bool { return strings.EqualFold(u.GitLab, username) })
}

func (c *Config) findUser(match func(User) bool) (User, bool) {
	for _, u := range c.Users {
		if match(u) {
			return u, true
		}
	}
	return User{}, false
}

func (c *Config) setSurfaceDefaults() {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Slack != nil && c.Slack.Mode == "" {
		c.Slack.Mode = SlackModeHTTP
	}
	if c.Slack != nil && c.Slack.APIURL != "" && !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/" // slack-go appends method names to it
	}
	if c.Slack != nil && c.Slack.MinSeverity == "" {
		c.Slack.MinSeverity = "info"
	}
	if r := &c.Notify.RemindPaused; !r.Off {
		if r.After.Duration == 0 {
			r.After.Duration = 30 * time.Minute
		}
		if r.Every.Duration == 0 {
			r.Every.Duration = time.Hour
		}
	}
	if d := c.DingTalk; d != nil {
		if d.LinkTTL.Duration == 0 {
			d.LinkTTL.Duration = 30 * time.Minute
		}
		if d.RateLimit == 0 {
			d.RateLimit = 20
		}
		if d.Identity == "" {
			d.Identity = IdentityGitLab
		}
	}
	if d := c.Dashboard; d != nil && d.Access == DashboardGitLab && d.Identity == "" {
		d.Identity = IdentityGitLab
	}
	if c.SignIn != nil {
		c.SignIn.setDefaults()
	}
}

func (c *Config) validateSurfaces(v *validator) {
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || !isHTTPURL(c.PublicURL) || u.RawQuery != "" || u.Fragment != "" {
			v.failf([]any{"publicURL"}, "%q is not an absolute http(s) URL such as https://shipbot.example.com", c.PublicURL)
		}
	}
	if t := c.API.Token; !t.IsZero() && len(t.Value()) < minSecretLen {
		// The value is not echoed: it is a credential even when too short.
		v.failf([]any{"api", "token"}, "is %d bytes; use at least %d random bytes, e.g. from `openssl rand -hex 32`", len(t.Value()), minSecretLen)
	}
	if c.Slack != nil {
		c.Slack.validate(v, []any{"slack"}, c.Environment)
	}
	if c.SignIn != nil {
		c.SignIn.validate(v, []any{"signin"}, c.PublicURL)
	}
	if c.DingTalk != nil {
		c.DingTalk.validate(v, []any{"dingtalk"}, c.PublicURL)
		validateIdentity(v, []any{"dingtalk"}, identity{c.DingTalk.Identity, c.DingTalk.TrustedProxies}, c.SignIn != nil)
	}
	names := map[string]bool{}
	for i, w := range c.Notify.Webhooks {
		w.validate(v, []any{"notify", "webhooks", i}, names)
	}
	if r := c.Notify.RemindPaused; r.After.Duration < 0 || r.Every.Duration < 0 {
		v.failf([]any{"notify", "remindPaused"}, "after and every must be positive durations such as 30m and 1h")
	}
	validateUsers(v, c.Users)
}

func (s *Slack) validate(v *validator, path []any, environment func(string) (Environment, bool)) {
	if s.BotToken.IsZero() {
		v.failf(at(path, "botToken"), "required: the bot token (xoxb-...) from the Slack app's OAuth page")
	}
	if s.Channel == "" {
		v.failf(at(path, "channel"), "required: the channel ID or name release messages go to")
	}
	switch s.Mode {
	case SlackModeHTTP:
		if s.SigningSecret.IsZero() {
			v.failf(at(path, "signingSecret"), "required in http mode: without it anyone could post clicks to shipbot")
		}
	case SlackModeSocket:
		switch {
		case s.AppToken.IsZero():
			v.failf(at(path, "appToken"), "required in socket mode: an app-level token (xapp-...) with connections:write")
		case !strings.HasPrefix(s.AppToken.Value(), "xapp-"):
			// The value is not echoed: it is a credential even when mistyped.
			v.failf(at(path, "appToken"), "is not an app-level token: those start with xapp-")
		}
	default:
		v.failf(at(path, "mode"), "%q is not one of http, socket", s.Mode)
	}
	if s.APIURL != "" && !isHTTPURL(s.APIURL) {
		v.failf(at(path, "apiURL"), "%q is not an http(s) URL such as https://slack.com/api/", s.APIURL)
	}
	for _, env := range slices.Sorted(maps.Keys(s.Channels)) {
		if _, ok := environment(env); !ok {
			v.failf(at(path, "channels", env), "environment %q is not in environments", env)
		}
		if strings.TrimSpace(s.Channels[env]) == "" {
			v.failf(at(path, "channels", env), "needs a channel ID or name for environment %q", env)
		}
	}
	if !slices.Contains(severities, s.MinSeverity) {
		v.failf(at(path, "minSeverity"), "%q is not one of %s", s.MinSeverity, strings.Join(severities, ", "))
	}
}

func (d *DingTalk) validate(v *validator, path []any, publicURL string) {
	switch {
	case d.WebhookURL.IsZero():
		v.failf(at(path, "webhookURL"), "required: the custom robot's webhook URL")
	case !isHTTPURL(d.WebhookURL.Value()):
		v.failf(at(path, "webhookURL"), "is not an absolute http(s) URL")
	}
	if publicURL == "" {
		v.failf(path, "needs publicURL: its messages link back to shipbot to confirm actions")
	}
	if d.LinkTTL.Duration < 0 {
		v.failf(at(path, "linkTTL"), "must be positive")
	}
	if d.RateLimit < 1 {
		v.failf(at(path, "rateLimit"), "must be at least 1 message per minute, got %d", d.RateLimit)
	}
	switch {
	case d.LinkSecret.IsZero():
		v.failf(at(path, "linkSecret"), "required: a random secret of at least 32 bytes that signs action links")
	case len(d.LinkSecret.Value()) < minSecretLen:
		v.failf(at(path, "linkSecret"), "is %d bytes; use at least 32 random bytes", len(d.LinkSecret.Value()))
	}
}

// reasonName is the form of release event reasons, e.g. StageStarted.
var reasonName = regexp.MustCompile(`^[A-Z][A-Za-z]*$`)

func (w NotifyWebhook) validate(v *validator, path []any, seen map[string]bool) {
	checkName(v, at(path, "name"), w.Name, seen)
	switch {
	case w.URL.IsZero():
		v.failf(at(path, "url"), "required")
	case !isHTTPURL(w.URL.Value()):
		v.failf(at(path, "url"), "is not an absolute http(s) URL")
	}
	events := map[string]bool{}
	for i, e := range w.Events {
		switch {
		case !reasonName.MatchString(e):
			v.failf(at(path, "events", i), "%q is not an event reason such as Paused or Succeeded", e)
		case events[e]:
			v.failf(at(path, "events", i), "duplicate event %q", e)
		}
		events[e] = true
	}
}

var (
	gitlabUsername = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	slackUserID    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

// validateUsers checks each mapping and that no identity maps to two users,
// which would make the role shipbot checks depend on file order.
func validateUsers(v *validator, users []User) {
	seen := map[string]int{}
	once := func(path []any, kind, id string, i int) {
		key := kind + "\x00" + strings.ToLower(id)
		if j, dup := seen[key]; dup {
			v.failf(path, "%s %q is already mapped by users[%d]", kind, id, j)
			return
		}
		seen[key] = i
	}
	for i, u := range users {
		path := []any{"users", i}
		switch {
		case u.GitLab == "":
			v.failf(at(path, "gitlab"), "required: the GitLab username this person acts as")
		case !gitlabUsername.MatchString(u.GitLab):
			v.failf(at(path, "gitlab"), "%q is not a GitLab username", u.GitLab)
		default:
			once(at(path, "gitlab"), "gitlab user", u.GitLab, i)
		}
		if u.Slack == "" && u.DingTalk == "" && u.Email == "" {
			v.failf(path, "user %q maps nothing: give slack, dingtalk or email", u.GitLab)
		}
		if u.Slack != "" {
			if !slackUserID.MatchString(u.Slack) {
				v.failf(at(path, "slack"), "%q is not a Slack user ID such as U123ABC (find it in the profile's menu: Copy member ID)", u.Slack)
			} else {
				once(at(path, "slack"), "slack user", u.Slack, i)
			}
		}
		if u.DingTalk != "" {
			if strings.ContainsAny(u.DingTalk, " \t\n") {
				v.failf(at(path, "dingtalk"), "%q is not a DingTalk staff ID", u.DingTalk)
			} else {
				once(at(path, "dingtalk"), "dingtalk user", u.DingTalk, i)
			}
		}
		if u.Email != "" {
			if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
				v.failf(at(path, "email"), "%q is not an email address", u.Email)
			} else {
				once(at(path, "email"), "email", u.Email, i)
			}
		}
	}
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

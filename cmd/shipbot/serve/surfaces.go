package serve

import (
	"context"
	"errors"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/chat/dingtalk"
	"github.com/shipbot/shipbot/bot/chat/slack"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/bot/notify"
	"github.com/shipbot/shipbot/bot/notify/outgoing"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
)

// surfaces are the people-facing parts beyond GitLab comments: chat apps,
// outgoing webhooks, and the authorization every action goes through.
type surfaces struct {
	// Built first, since the engines tell them what happens.
	slackPoster     *slack.Poster // nil when slack is not configured
	dingtalk        *dingtalk.Notifier
	tokens          *dingtalk.Tokens
	webhooks        []*outgoing.Notifier
	audience        release.Audience
	deployNotifiers []deployer.Notifier

	// Built once the release scheduler exists, since they act on it.
	ops      *ops.Service      // nil without a GitLab token
	deploys  *govern.Deploys   // /deploy and its API; nil without a GitLab token
	authz    *authz.Authorizer // GitLab roles, for ops and the dashboard's readers
	resolver *authz.Resolver   // chat identities → GitLab users
	slack    *slack.App        // the Poster's messages with their buttons live
}

// buildPosters builds the surfaces the config turns on, as far as they post.
func (m *Main) buildPosters() (*surfaces, error) {
	cfg := m.Config
	s := &surfaces{}
	if m.gitlab == nil && (cfg.Slack != nil || cfg.DingTalk != nil) {
		return nil, errors.New("slack and dingtalk need gitlab.token: every chat action is checked against the actor's GitLab role")
	}
	if c := cfg.Slack; c != nil {
		p, err := slack.NewPoster(slack.Options{
			BotToken: c.BotToken.Value(), SigningSecret: c.SigningSecret.Value(), AppToken: c.AppToken.Value(),
			Channel: c.Channel, Mode: slack.Mode(c.Mode), Channels: c.Channels, MinSeverity: notify.Severity(c.MinSeverity),
			Store: m.store, Log: m.Log.With("surface", "slack"), APIURL: c.APIURL, Now: m.Now,
		})
		if err != nil {
			return nil, err
		}
		s.slackPoster = p
		s.audience = append(s.audience, release.Listener{Name: "slack", Notifier: p.Notifier})
		s.deployNotifiers = append(s.deployNotifiers, p.Previews())
	}

	if c := cfg.DingTalk; c != nil {
		var err error
		if s.tokens, err = dingtalk.NewTokens(c.LinkSecret.Value(), c.LinkTTL.Duration); err != nil {
			return nil, err
		}
		s.tokens.Now = m.Now
		robot := &dingtalk.Robot{Webhook: c.WebhookURL.Value(), Secret: c.Secret.Value(), Now: m.Now}
		s.dingtalk, err = dingtalk.NewNotifier(dingtalk.NotifierOptions{
			Robot: robot, Tokens: s.tokens, PublicURL: cfg.PublicURL, Limit: c.RateLimit,
			Now: m.Now, Log: m.Log.With("surface", "dingtalk"),
		})
		if err != nil {
			return nil, err
		}
		s.audience = append(s.audience, release.Listener{Name: "dingtalk", Notifier: s.dingtalk})
	}

	for _, w := range cfg.Notify.Webhooks {
		n, err := outgoing.NewNotifier(outgoing.Options{
			Name: w.Name, URL: w.URL.Value(), Secret: w.Secret.Value(), Events: w.Events,
			Now: m.Now, Log: m.Log.With("webhook", w.Name), Metrics: m.registry,
		})
		if err != nil {
			return nil, err
		}
		s.webhooks = append(s.webhooks, n)
		s.audience = append(s.audience, release.Listener{Name: "webhook " + w.Name, Notifier: n.Releases()})
		s.deployNotifiers = append(s.deployNotifiers, n.Deploys())
	}
	return s, nil
}

// buildActors builds authorization and what acts through it on the release
// scheduler: ops, and the clicks and slash command half of Slack. Every surface acts through
// ops, whose Authorizer checks the actor's GitLab role, so acting needs the
// GitLab API.
func (m *Main) buildActors() error {
	if m.gitlab == nil {
		return nil
	}
	cfg, s := m.Config, m.surfaces
	z := authz.New(authz.Options{
		GitLab:             m.gitlab,
		RequiredAccess:     requiredAccess(m.live),
		Approvals:          approvals(m.live),
		ForbidSelfApproval: cfg.ForbidSelfApproval,
		Now:                m.Now, Log: m.Log,
	})
	s.ops, s.authz = &ops.Service{Releases: m.releases, Authz: z, Log: m.Log}, z
	s.deploys = &govern.Deploys{GitLab: m.gitlab, Ops: s.ops, Config: m.live, Store: m.store, Wake: m.releases.Wake, Now: m.Now, Log: m.Log}
	s.resolver = authz.NewResolver(authz.ResolverOptions{GitLab: m.gitlab, Users: mappings(cfg.Users), Now: m.Now})
	if s.slackPoster != nil {
		var err error
		gov := slack.Governance{Locks: s.ops, Deploys: s.deploys, Projects: cfg.ProjectsIn}
		if s.slack, err = s.slackPoster.Interactive(s.ops, slackIdentities{s.resolver}, gov); err != nil {
			return err
		}
	}
	return nil
}

// registerSurfaces serves the chat surfaces' endpoints.
func (m *Main) registerSurfaces(e *echo.Echo) {
	s := m.surfaces
	if s.slack != nil {
		s.slack.Register(e)
	}
	if s.tokens == nil {
		return
	}
	c := m.Config.DingTalk
	h, err := dingtalk.NewHandler(dingtalk.HandlerOptions{
		Tokens: s.tokens, Ops: s.ops, Releases: m.releases, Notes: m.store,
		Identity: m.identity(c.Identity, c.Proxies()), Identities: s.resolver,
		PublicURL: m.Config.PublicURL, Recorded: m.releases.Kick, Now: m.Now, Log: m.Log.With("surface", "dingtalk"),
	})
	if err != nil {
		// Its inputs were checked when the notifier was built from the same config.
		panic(fmt.Sprintf("dingtalk handler: %v", err))
	}
	h.Register(e)
}

// run starts what sends in the background; each returns when ctx ends.
func (s *surfaces) run(ctx context.Context, spawn func(func())) {
	if s.slack != nil {
		spawn(func() { _ = s.slack.Run(ctx) })
	}
	if s.dingtalk != nil {
		spawn(func() { _ = s.dingtalk.Run(ctx) })
	}
	for _, w := range s.webhooks {
		spawn(func() { _ = w.Run(ctx) })
	}
}

// close waits for what clicks started.
func (s *surfaces) close() {
	if s != nil && s.slack != nil {
		s.slack.Close()
	}
}

// slackIdentities resolves Slack users through the config's users and
// GitLab's users by email.
type slackIdentities struct{ r *authz.Resolver }

func (s slackIdentities) Resolve(ctx context.Context, userID, email string) (ops.Actor, error) {
	return s.r.Resolve(ctx, authz.Identity{Surface: release.SurfaceSlack, ChatID: userID, Email: email})
}

func requiredAccess(cfg config.Current) func(string) gitlab.AccessLevel {
	return func(env string) gitlab.AccessLevel {
		e, ok := cfg.Load().Environment(env)
		if !ok {
			return gitlab.Maintainer
		}
		l, err := gitlab.ParseAccessLevel(e.RequiredAccess())
		if err != nil {
			return gitlab.Maintainer
		}
		return l
	}
}

func approvals(cfg config.Current) func(string) int {
	return func(env string) int {
		if e, ok := cfg.Load().Environment(env); ok {
			return e.Approvals
		}
		return 1
	}
}

func mappings(users []config.User) []authz.Mapping {
	out := make([]authz.Mapping, 0, len(users))
	for _, u := range users {
		out = append(out, authz.Mapping{GitLab: u.GitLab, Slack: u.Slack, DingTalk: u.DingTalk, Email: u.Email})
	}
	return out
}

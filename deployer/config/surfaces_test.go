package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const surfaces = `
publicURL: https://shipbot.example.com/
api:
  token: ${SHIPBOT_TEST_API_TOKEN}
slack:
  botToken: xoxb-1
  signingSecret: ${SHIPBOT_TEST_SLACK_SIGNING}
  channel: C0DEPLOYS
dingtalk:
  webhookURL: https://oapi.dingtalk.com/robot/send?access_token=abc
  secret: SEC123
  linkSecret: ${SHIPBOT_TEST_LINK_SECRET}
  identity: proxyHeader
  trustedProxies: [10.0.0.0/8]
notify:
  webhooks:
    - name: audit
      url: https://audit.example.com/hooks/shipbot
      secret: hmac-key
      events: [Paused, Succeeded]
    - name: everything
      url: http://collector:8080/in
users:
  - gitlab: alice
    slack: U123ABC
    dingtalk: "0123456"
    email: alice@example.com
  - gitlab: Bob.Smith
    email: bob@example.com
`

func TestSurfacesLoad(t *testing.T) {
	t.Setenv("SHIPBOT_TEST_API_TOKEN", "api-token-value-of-thirty-two-bytes")
	t.Setenv("SHIPBOT_TEST_SLACK_SIGNING", "signing-value")
	t.Setenv("SHIPBOT_TEST_LINK_SECRET", strings.Repeat("k", 32))
	cfg, err := Parse("f.yaml", []byte(base+surfaces))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "https://shipbot.example.com" {
		t.Errorf("publicURL = %q, want it without the trailing slash", cfg.PublicURL)
	}
	if cfg.API.Token.Value() != "api-token-value-of-thirty-two-bytes" || cfg.Slack.SigningSecret.Value() != "signing-value" {
		t.Errorf("secrets not read from the environment")
	}
	if cfg.Slack.Mode != SlackModeHTTP || cfg.Slack.Channel != "C0DEPLOYS" {
		t.Errorf("slack = %+v", cfg.Slack)
	}
	if d := cfg.DingTalk; d.LinkTTL.Duration != 30*time.Minute || d.RateLimit != 20 || d.Secret.Value() != "SEC123" ||
		d.Identity != IdentityProxyHeader || len(d.Proxies()) != 1 || d.Proxies()[0].String() != "10.0.0.0/8" {
		t.Errorf("dingtalk defaults not applied: %+v", d)
	}
	if w := cfg.Notify.Webhooks; len(w) != 2 || w[0].Events[1] != "Succeeded" || len(w[1].Events) != 0 {
		t.Errorf("webhooks = %+v", w)
	}
	if u, ok := cfg.UserBySlack("U123ABC"); !ok || u.GitLab != "alice" {
		t.Errorf("UserBySlack = %+v, %v", u, ok)
	}
	if u, ok := cfg.UserByDingTalk("0123456"); !ok || u.GitLab != "alice" {
		t.Errorf("UserByDingTalk = %+v, %v", u, ok)
	}
	if u, ok := cfg.UserByGitLab("bob.smith"); !ok || u.Email != "bob@example.com" {
		t.Errorf("UserByGitLab = %+v, %v", u, ok)
	}
	if _, ok := cfg.UserBySlack(""); ok {
		t.Error("UserBySlack(\"\") matched a user without a Slack ID")
	}
	dump := fmt.Sprintf("%v %+v %+v %+v", cfg, cfg.Slack, cfg.DingTalk, cfg.Notify)
	for _, secret := range []string{"api-token-value-of-thirty-two-bytes", "signing-value", "xoxb-1", "access_token=abc", "SEC123", "hmac-key"} {
		if strings.Contains(dump, secret) {
			t.Errorf("secret %q leaked: %s", secret, dump)
		}
	}
}

func TestSlackRouting(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base+"slack:\n  botToken: xoxb-1\n  signingSecret: s\n  channel: C0DEPLOYS\n  channels: {dev: C0DEV}\n  minSeverity: warning\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Slack; s.Channels["dev"] != "C0DEV" || len(s.Channels) != 1 || s.MinSeverity != "warning" {
		t.Errorf("slack = %+v", s)
	}
	cfg, err = Parse("f.yaml", []byte(base+"slack:\n  botToken: xoxb-1\n  signingSecret: s\n  channel: C0DEPLOYS\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Slack; s.MinSeverity != "info" || s.Channels != nil || s.APIURL != "" {
		t.Errorf("slack defaults: %+v, want minSeverity info, no channels and Slack's own API", s)
	}
	cfg, err = Parse("f.yaml", []byte(base+"slack:\n  botToken: xoxb-1\n  signingSecret: s\n  channel: C0DEPLOYS\n  apiURL: https://slack-proxy.internal/api\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Slack.APIURL; got != "https://slack-proxy.internal/api/" {
		t.Errorf("slack.apiURL %q, want it with the trailing slash slack-go needs", got)
	}
}

func TestSurfacesOff(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slack != nil || cfg.DingTalk != nil || !cfg.API.Token.IsZero() || cfg.PublicURL != "" {
		t.Errorf("surfaces on without being configured: %+v", cfg)
	}
}

func TestSurfaceErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"relative public URL", "publicURL: shipbot.example.com",
			[]string{"f.yaml:19: publicURL:", "not an absolute http(s) URL"}},
		{"short api token", "api: {token: short}",
			[]string{"f.yaml:19: api.token: is 5 bytes; use at least 32 random bytes"}},
		{"slack apiURL not a URL", "slack: {botToken: xoxb-1, signingSecret: s, channel: C1, apiURL: slack.internal}",
			[]string{"f.yaml:19: slack.apiURL:", "not an http(s) URL"}},
		{"empty slack", "slack: {}", []string{
			"f.yaml:19: slack.botToken: required",
			"f.yaml:19: slack.channel: required",
			"f.yaml:19: slack.signingSecret: required in http mode"}},
		{"slack socket without app token", "slack:\n  botToken: xoxb-1\n  channel: C1\n  mode: socket",
			[]string{"f.yaml:19: slack.appToken: required in socket mode"}},
		{"slack socket with a bot token as app token", "slack:\n  botToken: xoxb-1\n  appToken: xoxb-leaked\n  channel: C1\n  mode: socket",
			[]string{"f.yaml:21: slack.appToken: is not an app-level token: those start with xapp-"}},
		{"slack bad mode", "slack:\n  botToken: xoxb-1\n  channel: C1\n  mode: events",
			[]string{"f.yaml:22: slack.mode: \"events\" is not one of http, socket"}},
		{"slack channels for unknown environments", "slack:\n  botToken: xoxb-1\n  signingSecret: s\n  channel: C1\n  channels:\n    prod: C0PROD\n    dev: \"\"\n  minSeverity: warn",
			[]string{
				`f.yaml:25: slack.channels.dev: needs a channel ID or name for environment "dev"`,
				`f.yaml:24: slack.channels.prod: environment "prod" is not in environments`,
				`f.yaml:26: slack.minSeverity: "warn" is not one of info, warning, error`}},
		{"slack unknown key", "slack:\n  token: xoxb-1",
			[]string{"f.yaml:20:", `unknown key "token" in slack`}},
		{"dingtalk without URL or publicURL", "dingtalk:\n  secret: SEC1",
			[]string{"f.yaml:19: dingtalk.webhookURL: required", "f.yaml:19: dingtalk: needs publicURL"}},
		{"dingtalk bad linkTTL", "publicURL: https://s.example.com\ndingtalk:\n  webhookURL: https://oapi.dingtalk.com/robot/send\n  linkTTL: 30 min",
			[]string{"f.yaml:22:", `"30 min" is not a duration`}},
		{"dingtalk short link secret and bad proxy", "publicURL: https://s.example.com\ndingtalk:\n  webhookURL: https://oapi.dingtalk.com/robot/send\n  linkSecret: short\n  trustedProxies: [10.0.0.1/40]",
			[]string{"f.yaml:22: dingtalk.linkSecret: is 5 bytes; use at least 32", `f.yaml:23: dingtalk.trustedProxies[0]: "10.0.0.1/40" is not a CIDR`}},
		{"dingtalk bad URL and rate", "publicURL: https://s.example.com\ndingtalk:\n  webhookURL: oapi.dingtalk.com/robot?access_token=leaked\n  rateLimit: -1",
			[]string{"f.yaml:21: dingtalk.webhookURL: is not an absolute http(s) URL", "f.yaml:22: dingtalk.rateLimit: must be at least 1"}},
		{"notify problems", "notify:\n  webhooks:\n    - name: a\n      url: ftp://x?token=leaked\n      events: [Paused, paused, Paused]\n    - name: a", []string{
			"f.yaml:22: notify.webhooks[0].url: is not an absolute http(s) URL",
			`f.yaml:23: notify.webhooks[0].events[1]: "paused" is not an event reason`,
			`f.yaml:23: notify.webhooks[0].events[2]: duplicate event "Paused"`,
			`f.yaml:24: notify.webhooks[1].name: duplicate name "a"`,
			"f.yaml:24: notify.webhooks[1].url: required"}},
		{"user problems", "users:\n  - slack: U1AB\n  - gitlab: carol\n  - gitlab: dave\n    slack: u1ab\n  - gitlab: erin\n    slack: U1AB\n    email: not-an-email\n  - gitlab: Carol\n    email: c@example.com", []string{
			"f.yaml:20: users[0].gitlab: required",
			`f.yaml:21: users[1]: user "carol" maps nothing: give slack, dingtalk or email`,
			`f.yaml:23: users[2].slack: "u1ab" is not a Slack user ID`,
			`f.yaml:25: users[3].slack: slack user "U1AB" is already mapped by users[0]`,
			`f.yaml:26: users[3].email: "not-an-email" is not an email address`,
			`f.yaml:27: users[4].gitlab: gitlab user "Carol" is already mapped by users[1]`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { failsWith(t, base+c.yaml, c.want) })
	}
}

func TestApprovalsRange(t *testing.T) {
	for _, n := range []int{-1, 11} {
		text := strings.Replace(base, "    namespace: apps-dev\n", fmt.Sprintf("    namespace: apps-dev\n    approvals: %d\n", n), 1)
		_, err := Parse("f.yaml", []byte(text))
		want := fmt.Sprintf("f.yaml:12: environments[0].approvals: must be from 1 to 10, got %d", n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("approvals %d: error %v, want %q", n, err, want)
		}
	}
	text := strings.Replace(base, "    namespace: apps-dev\n", "    namespace: apps-dev\n    approvals: 2\n", 1)
	cfg, err := Parse("f.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := cfg.Environment("dev"); e.Approvals != 2 {
		t.Errorf("approvals = %d, want 2", e.Approvals)
	}
}

func TestRemindPaused(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Notify.RemindPaused; r.Off || r.After.Duration != 30*time.Minute || r.Every.Duration != time.Hour {
		t.Errorf("defaults: %+v, want 30m then every 1h", r)
	}
	cfg, err = Parse("f.yaml", []byte(base+"notify:\n  remindPaused: {after: 10m, every: 20m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Notify.RemindPaused; r.After.Duration != 10*time.Minute || r.Every.Duration != 20*time.Minute {
		t.Errorf("set: %+v", r)
	}
	cfg, err = Parse("f.yaml", []byte(base+"notify:\n  remindPaused: {off: true}\n"))
	if err != nil || !cfg.Notify.RemindPaused.Off || cfg.Notify.RemindPaused.After.Duration != 0 {
		t.Errorf("off: %+v, %v", cfg.Notify.RemindPaused, err)
	}
	_, err = Parse("f.yaml", []byte(base+"notify:\n  remindPaused: {after: -5m}\n"))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:20: notify.remindPaused: after and every must be positive") {
		t.Errorf("negative: %v", err)
	}
}

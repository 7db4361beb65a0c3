package config

import (
	"strings"
	"testing"
	"time"
)

const signinYAML = `publicURL: https://shipbot.example.com
signin:
  clientID: app-id
  clientSecret: ${SHIPBOT_TEST_CLIENT_SECRET}
  sessionKey: ${SHIPBOT_TEST_SESSION_KEY}
`

const dingtalkYAML = `dingtalk:
  webhookURL: https://oapi.dingtalk.com/robot/send?access_token=leaked
  linkSecret: 0123456789abcdef0123456789abcdef
`

// withToken is base with a GitLab token, which access: gitlab needs to ask
// GitLab who is a member.
var withToken = strings.Replace(base, "  webhookSecret: s3cret\n", "  webhookSecret: s3cret\n  token: glpat-x\n", 1)

func setSigninEnv(t *testing.T) {
	t.Setenv("SHIPBOT_TEST_CLIENT_SECRET", "client-secret-leaked")
	t.Setenv("SHIPBOT_TEST_SESSION_KEY", strings.Repeat("s", 32)+"-leaked")
}

func TestSignInLoad(t *testing.T) {
	setSigninEnv(t)
	cfg, err := Parse("f.yaml", []byte(withToken+signinYAML+dingtalkYAML+"dashboard: {access: gitlab}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.SignIn
	if s.ClientID != "app-id" || s.ClientSecret.Value() != "client-secret-leaked" || s.SessionTTL.Duration != 8*time.Hour {
		t.Errorf("signin %+v", s)
	}
	if cfg.DingTalk.Identity != IdentityGitLab || cfg.Dashboard.Identity != IdentityGitLab {
		t.Errorf("identity defaults: dingtalk %q, dashboard %q; want gitlab", cfg.DingTalk.Identity, cfg.Dashboard.Identity)
	}
}

// The configurations that let a forged X-Forwarded-User act, or that
// leave a page with nobody to vouch for people, are refused at start,
// each with the key to fix.
func TestIdentityErrors(t *testing.T) {
	setSigninEnv(t)
	pub := "publicURL: https://shipbot.example.com\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"dingtalk before sign-in: trustedProxies alone", base + pub + dingtalkYAML + "  trustedProxies: [10.0.0.0/8]\n", []string{
			"f.yaml:20: dingtalk.identity: gitlab (the default) needs a signin section",
			"f.yaml:23: dingtalk.trustedProxies: only applies with identity: proxyHeader"}},
		{"dingtalk proxyHeader believing everyone", base + pub + dingtalkYAML + "  identity: proxyHeader\n", []string{
			"f.yaml:20: dingtalk.trustedProxies: required with identity: proxyHeader",
			"anyone who reaches shipbot could send X-Forwarded-User"}},
		{"dingtalk proxyHeader with an empty list", base + pub + dingtalkYAML + "  identity: proxyHeader\n  trustedProxies: []\n", []string{
			"dingtalk.trustedProxies: required with identity: proxyHeader"}},
		{"dingtalk unknown identity", base + signinYAML + dingtalkYAML + "  identity: header\n", []string{
			`f.yaml:27: dingtalk.identity: "header" is not one of gitlab, proxyHeader`}},
		{"dingtalk bad proxy", base + pub + dingtalkYAML + "  identity: proxyHeader\n  trustedProxies: [10.0.0.1/40]\n", []string{
			`f.yaml:24: dingtalk.trustedProxies[0]: "10.0.0.1/40" is not a CIDR`}},
		{"dashboard gitlab without sign-in", withToken + "dashboard: {access: gitlab}\n", []string{
			"f.yaml:20: dashboard.identity: gitlab (the default) needs a signin section"}},
		{"dashboard gitlab proxyHeader believing everyone", withToken + "dashboard: {access: gitlab, identity: proxyHeader}\n", []string{
			"f.yaml:20: dashboard.trustedProxies: required with identity: proxyHeader"}},
		{"dashboard gitlab without a GitLab token", base + signinYAML + "dashboard: {access: gitlab}\n", []string{
			"f.yaml:24: dashboard.access: gitlab needs gitlab.token"}},
		{"dashboard identity with a token", base + "dashboard: {access: token, token: a-long-enough-token, identity: proxyHeader, trustedProxies: [10.0.0.0/8]}\n", []string{
			"f.yaml:19: dashboard.identity: only applies with access: gitlab",
			"f.yaml:19: dashboard.trustedProxies: only applies with access: gitlab"}},
		{"signin incomplete", base + "signin:\n  sessionKey: short-leaked\n", []string{
			"f.yaml:19: signin: needs publicURL",
			"f.yaml:19: signin.clientID: required",
			"f.yaml:19: signin.clientSecret: required",
			"f.yaml:20: signin.sessionKey: is 12 bytes; use at least 32"}},
		{"signin TTL in days", base + signinYAML + "  sessionTTL: 30d\n", []string{"f.yaml:24: signin.sessionTTL: must be from 1m to 168h, got 720h0m0s"}},
		{"signin TTL out of range", base + signinYAML + "  sessionTTL: 10s\n", []string{
			"f.yaml:24: signin.sessionTTL: must be from 1m to 168h, got 10s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { failsWith(t, c.yaml, c.want) })
	}
}

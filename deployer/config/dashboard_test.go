package config

import "testing"

func TestDashboardLoad(t *testing.T) {
	if cfg, err := Parse("f.yaml", []byte(base)); err != nil || cfg.Dashboard != nil {
		t.Fatalf("no dashboard section: %+v, %v; want the dashboard off", cfg.Dashboard, err)
	}
	t.Setenv("SHIPBOT_TEST_DASHBOARD_TOKEN", "a-long-enough-dashboard-token-32+")
	for _, c := range []struct{ yaml, access string }{
		{"dashboard: {access: open}", DashboardOpen},
		{"dashboard:\n  access: token\n  token: ${SHIPBOT_TEST_DASHBOARD_TOKEN}", DashboardToken},
		{"dashboard:\n  access: basic\n  username: ops\n  password: pw", DashboardBasic},
	} {
		cfg, err := Parse("f.yaml", []byte(base+c.yaml))
		if err != nil {
			t.Fatalf("%s: %v", c.yaml, err)
		}
		if cfg.Dashboard == nil || cfg.Dashboard.Access != c.access {
			t.Errorf("%s: dashboard %+v", c.yaml, cfg.Dashboard)
		}
	}
	cfg, _ := Parse("f.yaml", []byte(base+"dashboard:\n  access: token\n  token: ${SHIPBOT_TEST_DASHBOARD_TOKEN}"))
	if cfg.Dashboard.Token.Value() != "a-long-enough-dashboard-token-32+" {
		t.Errorf("token not read from the environment")
	}
}

func TestDashboardErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"no access", "dashboard: {}", []string{`f.yaml:19: dashboard.access: "" is not one of open, token, basic`}},
		{"bad access", "dashboard:\n  access: public", []string{`f.yaml:20: dashboard.access: "public" is not one of open, token, basic`}},
		{"token without token", "dashboard:\n  access: token", []string{"f.yaml:19: dashboard.token: required with access: token"}},
		{"short token", "dashboard:\n  access: token\n  token: leaked", []string{"f.yaml:21: dashboard.token: is 6 bytes; use at least 32"}},
		{"basic without credentials", "dashboard:\n  access: basic", []string{
			"f.yaml:19: dashboard.username: required with access: basic",
			"f.yaml:19: dashboard.password: required with access: basic"}},
		{"open with credentials", "dashboard:\n  access: open\n  token: leaked-but-long-enough\n  username: ops", []string{
			"f.yaml:21: dashboard.token: only applies with access: token",
			"f.yaml:22: dashboard.username: only applies with access: basic"}},
		{"unknown key", "dashboard:\n  access: open\n  user: ops", []string{"f.yaml:21:", `unknown key "user" in dashboard`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { failsWith(t, base+c.yaml, c.want) })
	}
}

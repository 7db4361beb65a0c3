package gitlab_test

import (
	"encoding/json"
	"testing"

	"github.com/shipbot/shipbot/bot/gitlab"
)

func TestAccessLevelNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want gitlab.AccessLevel
	}{
		{"none", gitlab.NoAccess},
		{"minimal_access", gitlab.MinimalAccess},
		{"guest", gitlab.Guest},
		{"planner", gitlab.Planner},
		{"reporter", gitlab.Reporter},
		{"developer", gitlab.Developer},
		{" Maintainer ", gitlab.Maintainer},
		{"OWNER", gitlab.Owner},
	} {
		got, err := gitlab.ParseAccessLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAccessLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "dev", "30", "admin"} {
		if _, err := gitlab.ParseAccessLevel(bad); err == nil {
			t.Errorf("ParseAccessLevel(%q) succeeded", bad)
		}
	}
	if got := gitlab.AccessLevel(60).String(); got != "access_level(60)" {
		t.Errorf("String of an unknown level = %q", got)
	}
	if gitlab.Developer >= gitlab.Maintainer || int(gitlab.Developer) != 30 {
		t.Error("levels must keep GitLab's numbers")
	}
}

func TestAccessLevelJSON(t *testing.T) {
	var cfg struct {
		Min gitlab.AccessLevel `json:"min"`
	}
	if err := json.Unmarshal([]byte(`{"min":"maintainer"}`), &cfg); err != nil || cfg.Min != gitlab.Maintainer {
		t.Fatalf("unmarshal = %v, %v", cfg.Min, err)
	}
	b, err := json.Marshal(cfg)
	if err != nil || string(b) != `{"min":"maintainer"}` {
		t.Errorf("marshal = %s, %v", b, err)
	}
	if _, err := json.Marshal(struct{ L gitlab.AccessLevel }{60}); err == nil {
		t.Error("an unknown level was marshalled")
	}
}

func FuzzParseAccessLevel(f *testing.F) {
	for _, s := range []string{"developer", "Owner", "", "access_level(60)", "none "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := gitlab.ParseAccessLevel(s)
		if err != nil {
			return
		}
		back, err := gitlab.ParseAccessLevel(l.String())
		if err != nil || back != l {
			t.Errorf("%q -> %v -> %q -> %v, %v", s, l, l.String(), back, err)
		}
	})
}

package authz_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// mappings is shipbot.yaml's users: of the resolver tests.
var mappings = []authz.Mapping{
	{GitLab: "alice", Slack: "UALICE", DingTalk: "manager4711"},
	{GitLab: "bob", Email: "Bob.Builder@corp.example"},
	{GitLab: "ghost", Slack: "UGHOST"},
	{GitLab: "alice2", Slack: "UALICE"}, // a duplicate: the first entry wins
}

func setupResolver(t *testing.T, o authz.ResolverOptions) (*fakegitlab.Server, *authz.Resolver) {
	t.Helper()
	fake, c := setup(t)
	fake.SetUser(fakegitlab.User{ID: 11, Username: "bob", Email: "bob@corp.example"})
	fake.SetUser(fakegitlab.User{ID: 12, Username: "carol", PublicEmail: "carol@corp.example"})
	fake.SetUser(fakegitlab.User{ID: 15, Username: "frank", PublicEmail: "team@corp.example"})
	fake.SetUser(fakegitlab.User{ID: 16, Username: "grace", PublicEmail: "team@corp.example"})
	fake.SetUser(fakegitlab.User{ID: 17, Username: "mallory", PublicEmail: "mallory@corp.example", State: "blocked"})
	o.GitLab = c
	if o.Users == nil {
		o.Users = mappings
	}
	o.Now = fakeclock.New(time.Unix(1e9, 0)).Now
	return fake, authz.NewResolver(o)
}

func TestResolve(t *testing.T) {
	_, z := setupResolver(t, authz.ResolverOptions{})
	slack, ding := release.SurfaceSlack, release.SurfaceDingTalk
	for _, tc := range []struct {
		name string
		id   authz.Identity
		want ops.Actor
	}{
		{"Slack id in shipbot.yaml", authz.Identity{Surface: slack, ChatID: "UALICE", Email: "someone@else.example"},
			ops.Actor{Username: "alice", UserID: 10, Surface: slack, ChatID: "UALICE"}},
		{"DingTalk id in shipbot.yaml", authz.Identity{Surface: ding, ChatID: "manager4711"},
			ops.Actor{Username: "alice", UserID: 10, Surface: ding, ChatID: "manager4711"}},
		{"email in shipbot.yaml", authz.Identity{Surface: slack, ChatID: "UBOB", Email: "bob.builder@CORP.example"},
			ops.Actor{Username: "bob", UserID: 11, Surface: slack, ChatID: "UBOB"}},
		{"public email in GitLab", authz.Identity{Surface: slack, ChatID: "UCAROL", Email: "carol@corp.example"},
			ops.Actor{Username: "carol", UserID: 12, Surface: slack, ChatID: "UCAROL"}},
		{"GitLab username from an MR comment", authz.Identity{Surface: release.SurfaceMRComment, Username: "Carol"},
			ops.Actor{Username: "carol", UserID: 12, Surface: release.SurfaceMRComment}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := z.Resolve(t.Context(), tc.id)
			if err != nil || got != tc.want {
				t.Errorf("Resolve = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestResolveRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       authz.ResolverOptions
		id      authz.Identity
		want    []string // what the message says, in order
		mapping bool     // whether it is a *NotMappedError
	}{
		{"unknown Slack id with an unknown email", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "U999", Email: "new@corp.example"},
			[]string{"Slack user U999 (new@corp.example) is not linked to a GitLab user: GitLab shows no user with that email",
				"shipbot.yaml:\nusers:\n  - gitlab: <GitLab username>\n    slack: U999"}, true},
		{"unknown Slack id without an email", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "U999"},
			[]string{"Slack user U999 is not linked to a GitLab user.", "    slack: U999"}, true},
		{"unknown DingTalk id", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceDingTalk, ChatID: "UALICE"}, // a Slack id is no DingTalk id
			[]string{"DingTalk user UALICE is not linked", `    dingtalk: "UALICE"`}, true},
		{"private email without an admin token", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "UBOB2", Email: "bob@corp.example"},
			[]string{"GitLab shows no user with that email", "slack: UBOB2"}, true},
		{"email lookup off", authz.ResolverOptions{NoEmailLookup: true},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "UCAROL", Email: "carol@corp.example"},
			[]string{"Slack user UCAROL (carol@corp.example) is not linked to a GitLab user.", "slack: UCAROL"}, true},
		{"shared email", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "UTEAM", Email: "team@corp.example"},
			[]string{"several GitLab users have that email", "slack: UTEAM"}, true},
		{"mapped to a user GitLab does not know", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "UGHOST"},
			[]string{`Slack user UGHOST is linked in shipbot.yaml to GitLab user "ghost", who does not exist`}, true},
		{"unknown GitLab username", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceMRComment, Username: "zed"},
			[]string{`GitLab user "zed" does not exist`}, true},
		{"blocked account", authz.ResolverOptions{},
			authz.Identity{Surface: release.SurfaceSlack, ChatID: "UMAL", Email: "mallory@corp.example"},
			[]string{"GitLab account mallory is blocked"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, z := setupResolver(t, tc.o)
			a, err := z.Resolve(t.Context(), tc.id)
			if !errors.Is(err, ops.ErrForbidden) || a != (ops.Actor{}) {
				t.Fatalf("Resolve = %+v, %v; want a refusal", a, err)
			}
			var nm *authz.NotMappedError
			if got := errors.As(err, &nm) && errors.Is(err, authz.ErrNotMapped); got != tc.mapping {
				t.Errorf("NotMappedError: %v, want %v (err %v)", got, tc.mapping, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("message\n%s\nwant it to say %q", err, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestResolveCache(t *testing.T) {
	fake, z := setupResolver(t, authz.ResolverOptions{})
	id := authz.Identity{Surface: release.SurfaceSlack, ChatID: "UCAROL", Email: "carol@corp.example"}

	// Errors are not cached: the next click asks again.
	fake.FailNext("GET", "/users", 500)
	if _, err := z.Resolve(t.Context(), id); err == nil || errors.Is(err, ops.ErrForbidden) {
		t.Fatalf("a GitLab failure: err = %v, want an error that is not a refusal", err)
	}
	calls := fake.Calls()
	for range 3 {
		if a, err := z.Resolve(t.Context(), id); err != nil || a.Username != "carol" {
			t.Fatalf("Resolve = %+v, %v", a, err)
		}
	}
	// One search and one GET /users/:id to confirm the public email.
	if got := fake.Calls() - calls; got != 2 {
		t.Errorf("3 resolutions made %d GitLab calls, want 2", got)
	}
}

package authz_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

// A reader of the dashboard must be a Reporter or above on one of the
// apps' projects: a Guest, a stranger, a blocked account or a name GitLab
// does not know is refused; a project GitLab does not know is skipped.
func TestReader(t *testing.T) {
	fake, c := setup(t)
	fake.SetUser(fakegitlab.User{ID: 15, Username: "gus"})
	fake.SetMember(projectID, 15, int(gitlab.Guest))
	fake.SetProjectPath(43, "shop/api")
	fake.SetMember(43, erin.UserID, int(gitlab.Reporter))
	z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{})
	projects := []string{"shop/gone", project, "shop/api"}
	for _, a := range []ops.Actor{alice, bob, {Username: "erin"}, {Username: "dave"}} {
		if err := z.Reader(t.Context(), a, projects); err != nil {
			t.Errorf("%s: %v, want a reader", a.Username, err)
		}
	}
	for a, want := range map[ops.Actor]string{
		{Username: "gus", UserID: 15}: "gus is not a Reporter or above on any project shipbot deploys",
		erin:                          "erin is not a Reporter or above on any project shipbot deploys",
		{Username: "mallory"}:         "GitLab account mallory is blocked",
		{Username: "nobody"}:          "nobody is not a GitLab user",
		{}:                            "shipbot does not know who you are on GitLab",
	} {
		only := projects
		if a == erin { // a Reporter on shop/api only
			only = []string{project}
		}
		err := z.Reader(t.Context(), a, only)
		if !errors.Is(err, ops.ErrForbidden) || err.Error() != want {
			t.Errorf("%+v: %v, want a refusal %q", a, err, want)
		}
	}
}

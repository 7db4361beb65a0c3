package authz_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/test/fakeclock"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token     = "glpat-authz-test"
	projectID = int64(42)
	project   = "shop/web"
	group     = int64(7)
)

// The people of the tests and their role on shop/web.
var (
	alice = ops.Actor{Username: "alice", UserID: 10, Surface: release.SurfaceSlack}     // Developer
	bob   = ops.Actor{Username: "bob", UserID: 11, Surface: release.SurfaceSlack}       // Maintainer through the group
	carol = ops.Actor{Username: "carol", UserID: 12, Surface: release.SurfaceMRComment} // Maintainer, starts the releases
	dave  = ops.Actor{Username: "dave", UserID: 13, Surface: release.SurfaceAPI}        // Owner
	erin  = ops.Actor{Username: "erin", UserID: 14, Surface: release.SurfaceSlack}      // not a member
)

// setup starts a fake GitLab holding shop/web and its people, and a client
// for it without retries; it fails the test on calls the fake does not know.
func setup(t *testing.T) (*fakegitlab.Server, *gitlab.Client) {
	t.Helper()
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(projectID, project)
	fake.SetProjectGroups(projectID, group)
	for _, u := range []fakegitlab.User{
		{ID: 10, Username: "alice"}, {ID: 11, Username: "bob"}, {ID: 12, Username: "carol"},
		{ID: 13, Username: "dave"}, {ID: 14, Username: "erin"}, {ID: 17, Username: "mallory", State: "blocked"},
	} {
		fake.SetUser(u)
	}
	fake.SetMember(projectID, alice.UserID, int(gitlab.Developer))
	fake.SetGroupMember(group, bob.UserID, int(gitlab.Maintainer))
	fake.SetMember(projectID, carol.UserID, int(gitlab.Maintainer))
	fake.SetMember(projectID, dave.UserID, int(gitlab.Owner))
	c, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if u := fake.Unexpected(); len(u) > 0 {
			t.Errorf("calls the fake has no route for: %v", u)
		}
	})
	return fake, c
}

// requiredAccess is what the lead wires from config: prod1 is a tag
// environment, dev a branch one; staging is left out on purpose.
func requiredAccess(env string) gitlab.AccessLevel {
	return map[string]gitlab.AccessLevel{"prod1": gitlab.Maintainer, "dev": gitlab.Developer}[env]
}

func newAuthorizer(c *gitlab.Client, clk *fakeclock.Clock, o authz.Options) *authz.Authorizer {
	o.GitLab, o.Now, o.Log = c, clk.Now, slog.New(slog.DiscardHandler)
	if o.RequiredAccess == nil {
		o.RequiredAccess = requiredAccess
	}
	return authz.New(o)
}

func paused(env string, stage int) release.Release {
	return release.Release{ID: "web-" + env + "-1", App: "web", Project: project, Environment: env,
		TriggeredBy: "carol", Phase: release.Paused, Stage: stage,
		Stages: []release.Stage{{Target: 10}, {Target: 50}, {Target: 100}}}
}

// check compares err with the expected outcome: nil, or a refusal whose
// text contains want.
func check(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want allowed", what, err)
	case want != "" && !errors.Is(err, ops.ErrForbidden):
		t.Errorf("%s: err = %v, want a refusal saying %q", what, err, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: refusal %q, want it to say %q", what, err, want)
	}
}

func TestAuthorizeRoles(t *testing.T) {
	_, c := setup(t)
	z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{})
	noProject := paused("dev", 0)
	noProject.Project = ""

	for _, tc := range []struct {
		name  string
		actor ops.Actor
		r     release.Release
		kind  release.IntentKind
		want  string // "" means allowed, else what the refusal says
	}{
		{"developer on prod", alice, paused("prod1", 0), release.IntentContinue, "alice is Developer on shop/web; prod1 needs Maintainer"},
		{"developer rolls back on prod", alice, paused("prod1", 0), release.IntentRollback, "prod1 needs Maintainer"},
		{"maintainer through a group on prod", bob, paused("prod1", 0), release.IntentPromote, ""},
		{"owner on prod", dave, paused("prod1", 0), release.IntentPromoteFull, ""},
		{"developer on dev", alice, paused("dev", 0), release.IntentContinue, ""},
		{"non-member on dev", erin, paused("dev", 0), release.IntentPause, "erin is not a member of shop/web; dev needs Developer"},
		{"unconfigured environment needs maintainer", alice, paused("staging", 0), release.IntentAbort, "staging needs Maintainer"},
		{"actor known by username only", ops.Actor{Username: "bob", Surface: release.SurfaceCLI}, paused("prod1", 0), release.IntentContinue, ""},
		{"unknown username", ops.Actor{Username: "zed", Surface: release.SurfaceCLI}, paused("dev", 0), release.IntentPause, "zed is not a GitLab user"},
		{"blocked account known by username only", ops.Actor{Username: "mallory", Surface: release.SurfaceCLI}, paused("dev", 0), release.IntentPause, "GitLab account mallory is blocked"},
		{"no actor", ops.Actor{Surface: release.SurfaceAPI}, paused("dev", 0), release.IntentPause, "does not know who you are"},
		{"release without a project", bob, noProject, release.IntentPause, "names no GitLab project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, string(tc.kind), z.Authorize(t.Context(), tc.actor, tc.r, tc.kind), tc.want)
		})
	}
}

func TestSelfApproval(t *testing.T) {
	_, c := setup(t)
	r := paused("prod1", 1) // started by carol, a maintainer
	for _, tc := range []struct {
		forbid bool
		actor  ops.Actor
		kind   release.IntentKind
		want   string
	}{
		{true, carol, release.IntentContinue, "carol started this release, so someone else must continue it"},
		{true, carol, release.IntentPromote, "someone else must promote it"},
		{true, carol, release.IntentPromoteFull, "someone else must promote it"},
		{true, carol, release.IntentPause, ""},
		{true, carol, release.IntentRollback, ""},
		{true, carol, release.IntentAbort, ""},
		{true, ops.Actor{Username: "Carol", UserID: 12}, release.IntentContinue, "someone else must continue it"},
		{true, bob, release.IntentContinue, ""},
		{false, carol, release.IntentContinue, ""},
	} {
		z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{ForbidSelfApproval: tc.forbid})
		check(t, tc.actor.Username+" "+string(tc.kind), z.Authorize(t.Context(), tc.actor, r, tc.kind), tc.want)
	}
}

func TestCache(t *testing.T) {
	fake, c := setup(t)
	clk := fakeclock.New(time.Unix(1e9, 0))
	z := newAuthorizer(c, clk, authz.Options{})
	r := paused("prod1", 0)
	authorize := func(a ops.Actor) error { return z.Authorize(t.Context(), a, r, release.IntentPause) }

	calls := fake.Calls()
	for range 5 {
		check(t, "bob", authorize(bob), "")
	}
	if got := fake.Calls() - calls; got != 2 {
		t.Errorf("a burst of 5 clicks made %d GitLab calls, want 2 (project, role)", got)
	}

	// A changed role shows once the cached one expires.
	fake.SetGroupMember(group, bob.UserID, int(gitlab.Developer))
	calls = fake.Calls()
	check(t, "bob within the TTL", authorize(bob), "")
	clk.Advance(authz.DefaultTTL)
	check(t, "bob after the TTL", authorize(bob), "bob is Developer")
	if got := fake.Calls() - calls; got != 2 {
		t.Errorf("calls after the TTL = %d, want 2 (project and role again)", got)
	}

	// Errors are not cached: the next click asks again.
	fake.FailNext("GET", "/projects/42/members/all/13", 500)
	calls = fake.Calls()
	err := authorize(dave)
	if err == nil || errors.Is(err, ops.ErrForbidden) {
		t.Errorf("a GitLab failure: err = %v, want an error that is not a refusal", err)
	}
	check(t, "dave after the failure", authorize(dave), "")
	check(t, "dave again", authorize(dave), "")
	if got := fake.Calls() - calls; got != 2 {
		t.Errorf("calls = %d, want 2: the failed one and one retry, then the cache", got)
	}

	fake.FailNext("GET", "/projects/"+project, 503)
	clk.Advance(authz.DefaultTTL)
	if err := authorize(dave); err == nil || errors.Is(err, ops.ErrForbidden) {
		t.Errorf("project lookup failure: err = %v, want an error that is not a refusal", err)
	}
	check(t, "dave after the project failure", authorize(dave), "")
}

func TestCacheOff(t *testing.T) {
	fake, c := setup(t)
	z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{TTL: -1})
	calls := fake.Calls()
	for range 3 {
		check(t, "bob", z.Authorize(t.Context(), bob, paused("prod1", 0), release.IntentPause), "")
	}
	if got := fake.Calls() - calls; got != 6 {
		t.Errorf("calls without a cache = %d, want 6", got)
	}
}

// TestCacheBurst clicks at the same time: the callers share one lookup.
func TestCacheBurst(t *testing.T) {
	fake, c := setup(t)
	z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{})
	calls := fake.Calls()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = z.Authorize(t.Context(), bob, paused("prod1", 0), release.IntentPause) })
	}
	wg.Wait()
	for _, err := range errs {
		check(t, "bob", err, "")
	}
	if got := fake.Calls() - calls; got != 2 {
		t.Errorf("20 simultaneous clicks made %d GitLab calls, want 2", got)
	}
}

package ops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
)

// fakeReleases keeps releases in memory; refusals are kept only when
// withRefusals wraps it.
type fakeReleases struct {
	rels     map[string]release.Release
	recorded []release.Intent
}

var _ ops.Releases = (*fakeReleases)(nil)

func (f *fakeReleases) List(context.Context, release.Filter) ([]release.Release, error) {
	return nil, nil
}

func (f *fakeReleases) Get(_ context.Context, id string) (release.Release, error) {
	r, ok := f.rels[id]
	if !ok {
		return release.Release{}, fmt.Errorf("release %s: not found", id)
	}
	return r, nil
}

func (f *fakeReleases) Record(_ context.Context, id string, in release.Intent) (release.Release, error) {
	f.recorded = append(f.recorded, in)
	return f.rels[id], nil
}

type withRefusals struct {
	*fakeReleases
	refused func(ctx context.Context, id string, f release.Refusal) (release.Release, error)
}

var _ ops.Refusals = withRefusals{}

func (w withRefusals) Refused(ctx context.Context, id string, f release.Refusal) (release.Release, error) {
	return w.refused(ctx, id, f)
}

type fakeAuthz struct {
	authorize func(a ops.Actor, r release.Release, kind release.IntentKind) error
}

var _ ops.Authorizer = fakeAuthz{}

func (z fakeAuthz) Authorize(_ context.Context, a ops.Actor, r release.Release, kind release.IntentKind) error {
	return z.authorize(a, r, kind)
}

// refuse is how an Authorizer says no.
type refusal string

func (e refusal) Error() string { return string(e) }
func (e refusal) Unwrap() error { return ops.ErrForbidden }

// pending is how an Authorizer counts one approval of several.
type pending struct{}

func (pending) Error() string   { return "1 of 2 approvals to continue on prod1 (bob)" }
func (pending) Unwrap() []error { return []error{ops.ErrNeedsMoreApprovals, ops.ErrForbidden} }

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	bob   = ops.Actor{Username: "bob", UserID: 7, Surface: release.SurfaceSlack, ChatID: "U07BOB"}
	at    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

func newFake() *fakeReleases {
	return &fakeReleases{rels: map[string]release.Release{"r1": {ID: "r1", Environment: "prod1", Phase: release.Paused}}}
}

func TestActKeepsRefusals(t *testing.T) {
	tests := []struct {
		name string
		deny error
		kept bool
	}{
		{"refused", refusal("bob is Developer on shop/web; prod1 needs Maintainer"), true},
		{"approval counted", pending{}, false},
		{"gitlab down", errors.New("authz: gitlab: 502"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake()
			var kept []release.Refusal
			rs := withRefusals{fake, func(_ context.Context, id string, f release.Refusal) (release.Release, error) {
				kept = append(kept, f)
				r := fake.rels[id]
				r.History = append(r.History, release.Entry{Kind: release.EntryRefusal})
				return r, nil
			}}
			s := &ops.Service{Releases: rs, Log: quiet, Authz: fakeAuthz{func(ops.Actor, release.Release, release.IntentKind) error { return tc.deny }}}
			got, err := s.Act(t.Context(), bob, "r1", release.Intent{Kind: release.IntentContinue, At: at})
			if !errors.Is(err, tc.deny) {
				t.Fatalf("err = %v, want %v", err, tc.deny)
			}
			if len(fake.recorded) != 0 {
				t.Errorf("a denied intent was recorded: %+v", fake.recorded)
			}
			if !tc.kept {
				if len(kept) != 0 {
					t.Errorf("kept refusals %+v, want none", kept)
				}
				return
			}
			want := release.Refusal{
				Intent: release.Intent{Kind: release.IntentContinue, Actor: "bob", Surface: release.SurfaceSlack, At: at},
				ChatID: "U07BOB", Reason: tc.deny.Error(),
			}
			if len(kept) != 1 || kept[0] != want {
				t.Errorf("kept %+v, want %+v", kept, want)
			}
			if len(got.History) != 1 {
				t.Errorf("Act returned the release before the refusal was kept: %+v", got.History)
			}
		})
	}
}

func TestActRefusalWithoutRefusals(t *testing.T) {
	fake := newFake() // an ops.Releases that cannot keep refusals
	deny := refusal("no")
	s := &ops.Service{Releases: fake, Log: quiet, Authz: fakeAuthz{func(ops.Actor, release.Release, release.IntentKind) error { return deny }}}
	if _, err := s.Act(t.Context(), bob, "r1", release.Intent{Kind: release.IntentPause}); !errors.Is(err, ops.ErrForbidden) {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
}

func TestActKeepsTheRefusalAnswerWhenKeepingFails(t *testing.T) {
	fake := newFake()
	rs := withRefusals{fake, func(context.Context, string, release.Refusal) (release.Release, error) {
		return release.Release{}, errors.New("store closed")
	}}
	deny := refusal("bob is Reporter on shop/web; prod1 needs Maintainer")
	s := &ops.Service{Releases: rs, Log: quiet, Authz: fakeAuthz{func(ops.Actor, release.Release, release.IntentKind) error { return deny }}}
	got, err := s.Act(t.Context(), bob, "r1", release.Intent{Kind: release.IntentRollback})
	if !errors.Is(err, deny) || got.ID != "r1" {
		t.Fatalf("Act = %s, %v; want r1 and the refusal", got.ID, err)
	}
}

func TestActRecordsActorAndSurface(t *testing.T) {
	fake := newFake()
	s := &ops.Service{Releases: fake, Log: quiet, Authz: fakeAuthz{func(a ops.Actor, _ release.Release, kind release.IntentKind) error {
		if a != bob || kind != release.IntentPromote {
			return refusal(fmt.Sprintf("authorized %+v for %s", a, kind))
		}
		return nil
	}}}
	// What a surface puts in Actor and Surface is overwritten by who acts.
	in := release.Intent{Kind: release.IntentPromote, Percent: 50, Actor: "mallory", Surface: release.SurfaceAPI}
	if _, err := s.Act(t.Context(), bob, "r1", in); err != nil {
		t.Fatal(err)
	}
	if len(fake.recorded) != 1 || fake.recorded[0].Actor != "bob" || fake.recorded[0].Surface != release.SurfaceSlack || fake.recorded[0].Percent != 50 {
		t.Errorf("recorded %+v", fake.recorded)
	}
}

package ops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
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

type withApprovals struct {
	withRefusals
	kept []release.Approval
	err  error
}

var _ ops.Approvals = (*withApprovals)(nil)

// Approved counts distinct actors, as the engine does for one intent.
func (w *withApprovals) Approved(_ context.Context, id string, a release.Approval) (release.Release, []string, error) {
	if w.err != nil {
		return release.Release{}, nil, w.err
	}
	w.kept = append(w.kept, a)
	var by []string
	for _, k := range w.kept {
		if !slices.Contains(by, k.Intent.Actor) {
			by = append(by, k.Intent.Actor)
		}
	}
	return w.rels[id], by, nil
}

// policyAuthz allows everyone and wants need approvals for a continue.
type policyAuthz struct{ need int }

var _ ops.ApprovalPolicy = policyAuthz{}

func (policyAuthz) Authorize(context.Context, ops.Actor, release.Release, release.IntentKind) error {
	return nil
}

func (z policyAuthz) ApprovalRule(_ release.Release, kind release.IntentKind) ops.ApprovalRule {
	if kind != release.IntentContinue {
		return ops.ApprovalRule{Need: 1}
	}
	return ops.ApprovalRule{Need: z.need, Window: time.Hour, Role: "Maintainer"}
}

func TestActCountsApprovals(t *testing.T) {
	fake := newFake()
	refusals := 0
	rs := &withApprovals{withRefusals: withRefusals{fake, func(context.Context, string, release.Refusal) (release.Release, error) {
		refusals++
		return release.Release{}, nil
	}}}
	s := &ops.Service{Releases: rs, Log: quiet, Authz: policyAuthz{need: 2}}
	in := release.Intent{Kind: release.IntentContinue, At: at}

	_, err := s.Act(t.Context(), bob, "r1", in)
	var ae *ops.ApprovalError
	if !errors.As(err, &ae) || !errors.Is(err, ops.ErrNeedsMoreApprovals) || !errors.Is(err, ops.ErrForbidden) {
		t.Fatalf("first approval: err = %v, want an ApprovalError", err)
	}
	if want := "1 of 2 approvals to continue on prod1 (bob); waiting for another Maintainer"; err.Error() != want {
		t.Errorf("first approval says %q, want %q", err, want)
	}
	want := release.Approval{Intent: release.Intent{Kind: release.IntentContinue, Actor: "bob", Surface: release.SurfaceSlack, At: at},
		ChatID: "U07BOB", Need: 2, Window: time.Hour}
	if len(rs.kept) != 1 || rs.kept[0] != want || len(fake.recorded) != 0 || refusals != 0 {
		t.Fatalf("after one approval: kept %+v, recorded %+v, refusals %d; want the approval only", rs.kept, fake.recorded, refusals)
	}

	// The same person again still counts once.
	if _, err := s.Act(t.Context(), bob, "r1", in); !errors.Is(err, ops.ErrNeedsMoreApprovals) {
		t.Fatalf("bob again: err = %v, want ErrNeedsMoreApprovals", err)
	}
	ann := ops.Actor{Username: "ann", UserID: 8, Surface: release.SurfaceDingTalk}
	if _, err := s.Act(t.Context(), ann, "r1", in); err != nil {
		t.Fatalf("second approver: %v", err)
	}
	if len(fake.recorded) != 1 || fake.recorded[0].Actor != "ann" || fake.recorded[0].Surface != release.SurfaceDingTalk {
		t.Errorf("recorded %+v, want ann's continue", fake.recorded)
	}

	// What stops a release needs one person, and keeps no approval.
	kept := len(rs.kept)
	if _, err := s.Act(t.Context(), bob, "r1", release.Intent{Kind: release.IntentPause}); err != nil || len(rs.kept) != kept || len(fake.recorded) != 2 {
		t.Errorf("pause: %v, approvals kept %d, recorded %+v", err, len(rs.kept)-kept, fake.recorded)
	}
}

func TestActApprovalFailures(t *testing.T) {
	in := release.Intent{Kind: release.IntentContinue, At: at}

	// A store that cannot keep approvals must not let one person through.
	fake := newFake()
	s := &ops.Service{Releases: fake, Log: quiet, Authz: policyAuthz{need: 2}}
	if _, err := s.Act(t.Context(), bob, "r1", in); err == nil || errors.Is(err, ops.ErrForbidden) || len(fake.recorded) != 0 {
		t.Errorf("without Approvals: err = %v, recorded %+v; want an internal error and nothing recorded", err, fake.recorded)
	}

	// The release's own answer, e.g. it is not paused, comes back as it is.
	fake = newFake()
	s.Releases = &withApprovals{withRefusals: withRefusals{fakeReleases: fake}, err: fmt.Errorf("continue release r1: %w: it is progressing", release.ErrConflict)}
	if _, err := s.Act(t.Context(), bob, "r1", in); !errors.Is(err, release.ErrConflict) || len(fake.recorded) != 0 {
		t.Errorf("approval the release refuses: err = %v, recorded %+v; want ErrConflict and nothing recorded", err, fake.recorded)
	}
}

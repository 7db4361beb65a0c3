package authz_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakeclock"
)

// What shipbot wires as ops.Releases keeps approvals; without that, Act
// fails every request that needs several approvals.
var (
	_ ops.Approvals = (*release.Scheduler)(nil)
	_ ops.Approvals = (*release.Stepper)(nil)
)

// rig is ops.Service as shipbot wires it: a real Authorizer in front of a
// release engine on a bbolt file, which open reopens as a restart does.
type rig struct {
	t    *testing.T
	gl   *gitlab.Client
	clk  *fakeclock.Clock
	path string
	opts authz.Options
	st   *store.Store
	eng  *release.Stepper
	ops  *ops.Service
}

func newRig(t *testing.T, o authz.Options) *rig {
	_, c := setup(t)
	g := &rig{t: t, gl: c, clk: fakeclock.New(time.Unix(1e9, 0)), path: filepath.Join(t.TempDir(), "shipbot.db"), opts: o}
	g.open()
	t.Cleanup(func() { g.st.Close() })
	return g
}

// open (re)opens the store and builds a new engine, Authorizer and Service
// on it: nothing survives but the file.
func (g *rig) open() {
	g.t.Helper()
	if g.st != nil {
		g.st.Close()
	}
	st, err := store.Open(g.path, store.Options{LockTimeout: time.Second})
	if err != nil {
		g.t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: g.clk, Log: quiet})
	if err != nil {
		g.t.Fatal(err)
	}
	g.st, g.eng = st, eng
	g.ops = &ops.Service{Releases: eng, Log: quiet, Authz: newAuthorizer(g.gl, g.clk, g.opts)}
}

// create stores a release of web to env started by carol, as Pending.
func (g *rig) create(env string) release.Release {
	g.t.Helper()
	r, err := g.eng.Create(g.t.Context(), release.Release{
		App: "web", Project: project, Environment: env, Cluster: env + "-cluster", Namespace: "web", Strategy: release.Canary,
		From: release.Revision{Name: "v1-0-0", Image: "web:1.0.0"}, To: release.Revision{Name: "v1-1-0", Image: "web:1.1.0"},
		Stages: []release.Stage{{Target: 10}, {Target: 50}, {Target: 100}},
		Params: templates.Params{Ports: []templates.Port{{Port: 8080}}}, TriggeredBy: "carol",
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

// pause leaves release id paused before stage, as the engine does after a
// manual stage: it entered Paused now.
func (g *rig) pause(id string, stage int) {
	g.t.Helper()
	err := g.st.UpdateRelease(id, func(raw []byte) ([]byte, error) {
		var r release.Release
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		r.Phase, r.Stage = release.Paused, stage
		r.History = append(r.History, release.Entry{At: g.clk.Now(), Actor: release.EngineActor, Kind: release.EntryTransition,
			Phase: release.Paused, Stage: stage, Message: "Verifying → Paused"})
		return json.Marshal(r)
	})
	if err != nil {
		g.t.Fatal(err)
	}
}

func (g *rig) get(id string) release.Release {
	g.t.Helper()
	r, err := g.eng.Get(g.t.Context(), id)
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

// entries returns who made the entries of kind in r's history, and their messages, in order.
func entries(r release.Release, kind release.EntryKind) (who, msgs []string) {
	for _, e := range r.History {
		if e.Kind == kind {
			who, msgs = append(who, e.Actor), append(msgs, e.Message)
		}
	}
	return who, msgs
}

func TestApprovalRule(t *testing.T) {
	_, c := setup(t)
	z := newAuthorizer(c, fakeclock.New(time.Unix(1e9, 0)), authz.Options{
		Approvals: func(env string) int { return map[string]int{"prod1": 2, "dev": 0}[env] },
	})
	ended := paused("prod1", 1)
	ended.Phase = release.Succeeded
	for _, tc := range []struct {
		r    release.Release
		kind release.IntentKind
		want ops.ApprovalRule
	}{
		{paused("prod1", 1), release.IntentContinue, ops.ApprovalRule{Need: 2, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{paused("prod1", 1), release.IntentPromote, ops.ApprovalRule{Need: 2, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{paused("prod1", 1), release.IntentPromoteFull, ops.ApprovalRule{Need: 2, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{paused("prod1", 1), release.IntentRollback, ops.ApprovalRule{Need: 1, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{paused("prod1", 1), release.IntentPause, ops.ApprovalRule{Need: 1, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{ended, release.IntentContinue, ops.ApprovalRule{Need: 1, Window: authz.DefaultApprovalWindow, Role: "Maintainer"}},
		{paused("dev", 1), release.IntentContinue, ops.ApprovalRule{Need: 1, Window: authz.DefaultApprovalWindow, Role: "Developer"}},
	} {
		if got := z.ApprovalRule(tc.r, tc.kind); got != tc.want {
			t.Errorf("%s %s on %s: %+v, want %+v", tc.r.Environment, tc.kind, tc.r.Phase, got, tc.want)
		}
	}
	if n := z.Needed("prod1"); n != 2 {
		t.Errorf("Needed(prod1) = %d, want 2", n)
	}
}

// TestApprovals counts approvals through ops.Service, as every surface
// does, against a real engine: the count comes from the release's history.
func TestApprovals(t *testing.T) {
	type ask struct {
		actor ops.Actor
		kind  release.IntentKind
		stage int           // the stage the release is paused at; a change, or -1, pauses it anew
		wait  time.Duration // clock advance before asking
		want  string        // "" recorded; "refused: ..." a refusal; else the approval count
	}
	for _, tc := range []struct {
		name      string
		env       string
		need      int
		asks      []ask
		approvers []string // the approval entries at the end, in order
	}{
		{"two maintainers", "prod1", 2, []ask{
			{carol, release.IntentContinue, 1, 0, "1 of 2 approvals to continue on prod1 (carol); waiting for another Maintainer"},
			{carol, release.IntentContinue, 1, 0, "1 of 2 approvals to continue on prod1 (carol)"},
			{alice, release.IntentContinue, 1, 0, "refused: alice is Developer"},
			{bob, release.IntentContinue, 1, 0, ""},
			// The recorded intent spent the approvals: the count starts over.
			{dave, release.IntentContinue, 1, 0, "1 of 2 approvals to continue on prod1 (dave)"},
		}, []string{"carol", "bob", "dave"}},
		{"a new stage starts a new count", "prod1", 2, []ask{
			{carol, release.IntentContinue, 0, 0, "1 of 2"},
			{bob, release.IntentContinue, 1, time.Minute, "1 of 2 approvals to continue on prod1 (bob)"},
		}, []string{"carol", "bob"}},
		{"a new pause at the same stage starts a new count", "prod1", 2, []ask{
			{carol, release.IntentContinue, 1, 0, "1 of 2"},
			{bob, release.IntentContinue, -1, time.Minute, "1 of 2 approvals to continue on prod1 (bob)"},
		}, []string{"carol", "bob"}},
		{"continue and promote are counted apart", "prod1", 2, []ask{
			{carol, release.IntentContinue, 1, 0, "1 of 2"},
			{bob, release.IntentPromoteFull, 1, 0, "1 of 2 approvals to promote on prod1 (bob)"},
			{carol, release.IntentPromoteFull, 1, 0, ""},
		}, []string{"carol", "bob", "carol"}},
		{"stopping needs no approvals", "prod1", 2, []ask{
			{bob, release.IntentRollback, 1, 0, ""},
		}, nil},
		{"environments that want one", "dev", 2, []ask{
			{alice, release.IntentContinue, 1, 0, ""},
		}, nil},
		{"three", "prod1", 3, []ask{
			{carol, release.IntentContinue, 1, 0, "1 of 3 approvals to continue on prod1 (carol); waiting for 2 more people with Maintainer or above"},
			{bob, release.IntentContinue, 1, 0, "2 of 3 approvals to continue on prod1 (carol, bob); waiting for another Maintainer"},
			{dave, release.IntentContinue, 1, 0, ""},
		}, []string{"carol", "bob", "dave"}},
		{"approvals expire", "prod1", 2, []ask{
			{carol, release.IntentContinue, 1, 0, "1 of 2"},
			{bob, release.IntentContinue, 1, 25 * time.Hour, "1 of 2 approvals to continue on prod1 (bob)"},
		}, []string{"carol", "bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, authz.Options{Approvals: func(env string) int {
				if env == "prod1" {
					return tc.need
				}
				return 1
			}})
			id := g.create(tc.env).ID
			stage := -1
			for i, a := range tc.asks {
				g.clk.Advance(a.wait)
				if a.stage != stage {
					stage = max(a.stage, stage)
					g.pause(id, stage)
				}
				in := release.Intent{Kind: a.kind}
				if a.kind == release.IntentPromote {
					in.Percent = 50
				}
				intents := len(g.get(id).Intents)
				_, err := g.ops.Act(t.Context(), a.actor, id, in)
				what := a.actor.Username + " " + string(a.kind)
				var ae *authz.ApprovalError
				switch refusal, isRefusal := strings.CutPrefix(a.want, "refused: "); {
				case a.want == "":
					check(t, what, err, "")
					if got := g.get(id).Intents; len(got) != intents+1 || got[intents].Actor != a.actor.Username || got[intents].Kind != a.kind {
						t.Errorf("ask %d, %s: intents %+v, want theirs recorded", i, what, got)
					}
				case isRefusal:
					check(t, what, err, refusal)
					if errors.Is(err, authz.ErrNeedsMoreApprovals) {
						t.Errorf("ask %d: a refusal counted as an approval: %v", i, err)
					}
				case !errors.As(err, &ae) || !errors.Is(err, authz.ErrNeedsMoreApprovals) || !errors.Is(err, ops.ErrForbidden):
					t.Errorf("ask %d, %s: err = %v, want an ApprovalError wrapping ErrNeedsMoreApprovals and ErrForbidden", i, what, err)
				case !strings.Contains(err.Error(), a.want):
					t.Errorf("ask %d, %s: %q, want it to say %q", i, what, err, a.want)
				}
				if a.want != "" && len(g.get(id).Intents) != intents {
					t.Errorf("ask %d, %s: an intent was recorded: %+v", i, what, g.get(id).Intents)
				}
			}
			if who, msgs := entries(g.get(id), release.EntryApproval); !slices.Equal(who, tc.approvers) {
				t.Errorf("approval entries by %v, want %v: %q", who, tc.approvers, msgs)
			}
		})
	}
}

// TestApprovalsSurviveARestart gives one of two approvals, restarts (a new
// store handle, engine and Authorizer on the same file), and the second
// approval, from someone else, moves the release on.
func TestApprovalsSurviveARestart(t *testing.T) {
	g := newRig(t, authz.Options{ForbidSelfApproval: true, Approvals: func(string) int { return 2 }})
	id := g.create("prod1").ID
	// Paused by the engine itself before stage 1.
	if _, err := g.eng.Record(t.Context(), id, release.Intent{Kind: release.IntentPause, Actor: "dave", Surface: release.SurfaceCLI}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.eng.Step(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if r := g.get(id); r.Phase != release.Paused {
		t.Fatalf("release is %s, want Paused", r.Phase)
	}

	g.clk.Advance(time.Minute)
	slackDave := ops.Actor{Username: "dave", UserID: 13, Surface: release.SurfaceSlack, ChatID: "U0DAVE"}
	continueIt := release.Intent{Kind: release.IntentContinue}
	if _, err := g.ops.Act(t.Context(), slackDave, id, continueIt); !errors.Is(err, authz.ErrNeedsMoreApprovals) {
		t.Fatalf("dave's approval: err = %v, want ErrNeedsMoreApprovals", err)
	}

	g.open() // a restart
	g.clk.Advance(time.Minute)
	if _, err := g.ops.Act(t.Context(), carol, id, continueIt); err == nil || errors.Is(err, authz.ErrNeedsMoreApprovals) {
		t.Fatalf("the requester's approval after the restart: err = %v, want a refusal", err)
	}
	if _, err := g.ops.Act(t.Context(), bob, id, continueIt); err != nil {
		t.Fatalf("bob's approval after the restart: %v", err)
	}
	r := g.get(id)
	if n := len(r.Intents); n != 2 || r.Intents[1].Actor != "bob" || r.Intents[1].Kind != release.IntentContinue {
		t.Fatalf("intents %+v, want bob's continue after the pause", r.Intents)
	}
	_, _ = g.eng.Step(t.Context(), id) // fails past the intent: the rig has no cluster
	r = g.get(id)
	if r.Phase == release.Paused || r.Intents[1].Outcome != release.OutcomeApplied {
		t.Errorf("after a step: phase %s, continue %+v; want it applied", r.Phase, r.Intents[1])
	}
	who, msgs := entries(r, release.EntryApproval)
	if !slices.Equal(who, []string{"dave", "bob"}) ||
		msgs[0] != "approval 1 of 2 for continue to stage 1 by dave (slack)" || msgs[1] != "approval 2 of 2 for continue to stage 1 by bob (slack)" {
		t.Errorf("approval entries by %v: %q", who, msgs)
	}
	for _, e := range r.History {
		if e.Kind == release.EntryApproval && e.Actor == "dave" && e.ChatID != "U0DAVE" {
			t.Errorf("dave's approval names chat id %q, want U0DAVE", e.ChatID)
		}
	}
	if who, _ := entries(r, release.EntryRefusal); !slices.Equal(who, []string{"carol"}) {
		t.Errorf("refusals by %v, want carol's", who)
	}
}

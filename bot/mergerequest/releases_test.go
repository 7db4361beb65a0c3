package mergerequest_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/authz"
	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/bot/mergerequest"
	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token     = "glpat-review-test"
	projectID = int64(9)
	project   = "shop/web"
	mrIID     = int64(5)
)

// The commenters and their role on shop/web.
var (
	maintainer = gitlabevent.User{ID: 701, Username: "mia"}
	reporter   = gitlabevent.User{ID: 702, Username: "rex"}
	t0         = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

// The commit MR !5's merge made, tagged v1.1.0, and one of another MR.
var (
	mergedSHA = strings.Repeat("2", 40)
	otherSHA  = strings.Repeat("3", 40)
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// rig is the comment handler with a fake GitLab, a release engine on a
// temp store (no cluster: intents are recorded, not applied) and the real
// ops door with the real GitLab-backed authorizer behind it.
type rig struct {
	t      *testing.T
	gl     *fakegitlab.Server
	client *gitlab.Client
	eng    *release.Stepper
	st     *store.Store
	door   *ops.Service
	clock  *clock
	cmds   *mergerequest.Commands
}

func newRig(t *testing.T) *rig {
	t.Helper()
	fake := fakegitlab.New(t, token)
	fake.SetProjectPath(projectID, project)
	fake.SetMember(projectID, maintainer.ID, int(gitlab.Maintainer))
	fake.SetMember(projectID, reporter.ID, int(gitlab.Reporter))
	for _, iid := range []int64{mrIID, 6, 7} {
		fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: projectID, IID: iid, SourceBranch: "feature", HeadSHA: strings.Repeat("1", 40)})
	}
	fake.SetCommitMergeRequests(projectID, mergedSHA, mrIID)
	fake.SetCommitMergeRequests(projectID, otherSHA, 6)
	client, err := gitlab.New(fake.URL(), token, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "shipbot.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: t0}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := release.NewStepper(release.Options{Store: st, Clusters: release.ClusterMap{}, Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	door := &ops.Service{Releases: eng, Log: quiet, Authz: authz.New(authz.Options{
		GitLab: client, Now: clk.Now, Log: quiet,
		RequiredAccess: func(string) gitlab.AccessLevel { return gitlab.Maintainer },
	})}
	cmds := &mergerequest.Commands{API: client, Ops: door, Releases: eng, Log: quiet, Now: clk.Now}
	return &rig{t: t, gl: fake, client: client, eng: eng, st: st, door: door, clock: clk, cmds: cmds}
}

// release creates a release of app to env for the commit sha; paused
// leaves it waiting after its first stage was asked to pause, as the
// engine does without a cluster; otherwise it stays Pending.
func (r *rig) release(app, env, sha string, paused bool, edit ...func(*release.Release)) release.Release {
	r.t.Helper()
	ctx := r.t.Context()
	spec := release.Release{
		App: app, Project: project, Environment: env, Cluster: env + "-cluster", Namespace: "web", Strategy: release.Canary,
		From: release.Revision{Name: "v1-0-0", Image: "web:1.0.0"}, To: release.Revision{Name: "v1-1-0", Image: "web:1.1.0", SHA: sha, Ref: "v1.1.0"},
		Stages: []release.Stage{{Target: 10}, {Target: 50}, {Target: 100}},
		Params: templates.Params{Ports: []templates.Port{{Port: 8080}}}, TriggeredBy: "rel-manager",
	}
	for _, e := range edit {
		e(&spec)
	}
	rel, err := r.eng.Create(ctx, spec)
	if err != nil {
		r.t.Fatal(err)
	}
	if paused {
		r.step(rel.ID, release.IntentPause)
	}
	return r.get(rel.ID)
}

// step records kind as the release manager and lets the engine act on it.
func (r *rig) step(id string, kind release.IntentKind) {
	r.t.Helper()
	if _, err := r.eng.Record(r.t.Context(), id, release.Intent{Kind: kind, Actor: "rel-manager", Surface: release.SurfaceCLI}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.eng.Step(r.t.Context(), id); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) get(id string) release.Release {
	r.t.Helper()
	rel, err := r.eng.Get(r.t.Context(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return rel
}

// comment posts body on MR iid as user, as the webhook would bring it,
// runs the handler as the inbox does, and returns shipbot's reply and the
// emoji on the comment.
func (r *rig) comment(iid int64, user gitlabevent.User, body string) (reply string, emojis []string) {
	r.t.Helper()
	ctx := r.t.Context()
	id := r.gl.AddNote(projectID, iid, fakegitlab.Note{Body: body, Author: user.Username, AuthorID: user.ID})
	n := &gitlabevent.Note{Project: gitlabevent.Project{ID: projectID, Path: project}, ID: id, Body: body, Action: "create",
		NoteableType: "MergeRequest", MergeRequest: &gitlabevent.MergeRequestRef{IID: iid}, User: user}
	changes, after := r.cmds.Handle(ctx, n)
	if changes != nil {
		r.t.Fatalf("%q: release commands change nothing inside the inbox transaction", body)
	}
	if after != nil {
		after(nil)
	}
	for _, note := range r.gl.Notes(projectID, iid) {
		switch {
		case note.ID == id:
			emojis = note.Emojis
		case note.ID > id && strings.Contains(note.Body, "<!-- shipbot:reply -->"):
			if reply != "" {
				r.t.Errorf("%q: more than one reply", body)
			}
			reply = note.Body
		}
	}
	return reply, emojis
}

func intents(r release.Release) []string {
	var out []string
	for _, in := range r.Intents {
		out = append(out, in.Actor+"/"+string(in.Surface)+"/"+in.String())
	}
	return out
}

func TestReleaseCommands(t *testing.T) {
	var (
		done   = []string{"eyes", "white_check_mark"}
		failed = []string{"eyes", "x"}
	)
	tests := []struct {
		name   string
		iid    int64
		user   gitlabevent.User
		body   string
		target string   // which release the command must land on: prod1, prod2 or "" for none
		intent string   // the intent recorded there
		emojis []string // on the comment, in order
		reply  []string // phrases of the reply
	}{
		{name: "rollback the MR's release", iid: mrIID, user: maintainer, body: "/rollback", target: "prod1", intent: "mia/mr-comment/rollback",
			emojis: done, reply: []string{"✅ Recorded: rollback of release `", "(web `v1-1-0` in prod1 on prod1-cluster)", "asked by mia",
				"stage 1/3 · 0 % · paused by rel-manager"}},
		{name: "prefixed form", iid: mrIID, user: maintainer, body: "/shipbot promote 50", target: "prod1", intent: "mia/mr-comment/promote to 50 %",
			emojis: done, reply: []string{"Recorded: promote to 50 % of release"}},
		{name: "promote full", iid: mrIID, user: maintainer, body: "/promote full", target: "prod1", intent: "mia/mr-comment/promote-full",
			emojis: done, reply: []string{"Recorded: promote to 100 % (full) of release"}},
		{name: "another MR's release", iid: 6, user: maintainer, body: "/rollback", target: "other", intent: "mia/mr-comment/rollback",
			emojis: done, reply: []string{"(api `v1-1-0` in prod1 on prod1-cluster)"}},
		{name: "continue", iid: mrIID, user: maintainer, body: "/continue", target: "prod1", intent: "mia/mr-comment/continue", emojis: done},
		{name: "abort the queued one by environment", iid: mrIID, user: maintainer, body: "/abort prod2", target: "prod2", intent: "mia/mr-comment/abort", emojis: done},
		{name: "reporter refused", iid: mrIID, user: reporter, body: "/rollback", emojis: failed,
			reply: []string{"❌ rex may not roll back release `", "(web `v1-1-0` in prod1", "rex is Reporter on shop/web; prod1 needs Maintainer",
				"the refusal is kept in the release's history"}},
		{name: "conflict", iid: mrIID, user: maintainer, body: "/continue prod2", emojis: failed,
			reply: []string{"❌ Cannot continue release `", "in prod2", ": it is pending, not paused; continue only resumes a paused release. Nothing was recorded."}},
		{name: "stage that does not exist", iid: mrIID, user: maintainer, body: "/promote 30", emojis: failed,
			reply: []string{"30 % is not one of the steps; allowed: 10, 50, 100 %"}},
		{name: "an MR with no release", iid: 7, user: maintainer, body: "/pause", emojis: failed,
			reply: []string{"❌ No release: no active release came from a commit of this merge request. Name one, e.g. `/pause prod1` or `/pause r000000000012`."}},
		{name: "unknown environment", iid: mrIID, user: maintainer, body: "/pause staging", emojis: failed,
			reply: []string{"shop/web has no active release in `staging`."}},
		{name: "unknown release", iid: mrIID, user: maintainer, body: "/pause r000000000099", emojis: failed,
			reply: []string{"there is no release `r000000000099` of shop/web."}},
		{name: "status", iid: mrIID, user: reporter, body: "/status", emojis: done,
			reply: []string{"ℹ️ **Release status**", "web `v1-1-0` in prod1 on prod1-cluster): stage 1/3 · 0 % · paused by rel-manager",
				"in prod2 on prod2-cluster): pending · canary v1-0-0 → v1-1-0"}},
		{name: "status of an MR with no release", iid: 7, user: reporter, body: "/status", emojis: done,
			reply: []string{"ℹ️ No release: no release came from a commit of this merge request."}},
		{name: "help", iid: mrIID, user: reporter, body: "/help", reply: []string{"**shipbot commands.**"}, emojis: []string{"eyes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			// MR !5's tag: prod1 paused at its first stage, prod2 queued behind it.
			rels := map[string]release.Release{
				"prod1": r.release("web", "prod1", mergedSHA, true),
				"prod2": r.release("web", "prod2", mergedSHA, false),
				"other": r.release("api", "prod1", otherSHA, true), // MR !6's
			}
			reply, emojis := r.comment(tc.iid, tc.user, tc.body)
			if !slices.Equal(emojis, tc.emojis) {
				t.Errorf("emoji %v, want %v", emojis, tc.emojis)
			}
			for _, want := range tc.reply {
				if !strings.Contains(reply, want) {
					t.Errorf("reply lacks %q:\n%s", want, reply)
				}
			}
			for env, before := range rels {
				got := intents(r.get(before.ID))
				want := intents(before)
				if env == tc.target {
					want = append(want, tc.intent)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: intents %v, want %v", env, got, want)
				}
			}
			if u := r.gl.Unexpected(); len(u) > 0 {
				t.Errorf("calls the fake does not know: %v", u)
			}
		})
	}
}

func TestRefusalIsKeptInHistory(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	r.comment(mrIID, reporter, "/promote 50 prod1")
	got := r.get(rel.ID)
	last := got.History[len(got.History)-1]
	want := release.Entry{At: t0, Actor: "rex", Surface: release.SurfaceMRComment, Kind: release.EntryRefusal,
		Phase: release.Paused, Stage: 0, Message: "promote to 50 % refused: rex is Reporter on shop/web; prod1 needs Maintainer"}
	if last != want {
		t.Errorf("last history entry %+v, want %+v", last, want)
	}
	if len(got.Intents) != 1 || got.Phase != release.Paused {
		t.Errorf("a refusal changed the release: %s, intents %v", got.Phase, intents(got))
	}
}

// TestApprovalsByComment needs two maintainers' comments in prod1: the
// first is kept in the release's history as an approval, the second records
// the continue.
func TestApprovalsByComment(t *testing.T) {
	r := newRig(t)
	noah := gitlabevent.User{ID: 703, Username: "noah"}
	r.gl.SetMember(projectID, noah.ID, int(gitlab.Maintainer))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r.cmds.Ops = &ops.Service{Releases: r.eng, Log: quiet, Authz: authz.New(authz.Options{
		GitLab: r.client, Now: t0Now, Log: quiet, Approvals: func(string) int { return 2 },
		RequiredAccess: func(string) gitlab.AccessLevel { return gitlab.Maintainer },
	})}
	rel := r.release("web", "prod1", mergedSHA, true)

	reply, emojis := r.comment(mrIID, maintainer, "/continue")
	for _, want := range []string{"🗳️ Approval counted for release `", "1 of 2 approvals to continue on prod1 (mia); waiting for another Maintainer",
		"It is kept in the release's history; the continue itself is recorded once enough people ask."} {
		if !strings.Contains(reply, want) {
			t.Errorf("first approval: reply lacks %q:\n%s", want, reply)
		}
	}
	if want := []string{"eyes", "white_check_mark"}; !slices.Equal(emojis, want) {
		t.Errorf("first approval: emoji %v, want %v", emojis, want)
	}
	got := r.get(rel.ID)
	last := got.History[len(got.History)-1]
	if last.Kind != release.EntryApproval || last.Actor != "mia" || last.Message != "approval 1 of 2 for continue to stage 1 by mia (mr-comment)" ||
		!slices.Equal(intents(got), intents(rel)) {
		t.Errorf("after one approval: last entry %+v, intents %v", last, intents(got))
	}

	reply, _ = r.comment(mrIID, noah, "/continue")
	if !strings.Contains(reply, "✅ Recorded: continue of release `") {
		t.Errorf("second approval: reply\n%s", reply)
	}
	if got := intents(r.get(rel.ID)); !slices.Equal(got, append(intents(rel), "noah/mr-comment/continue")) {
		t.Errorf("intents after two approvals: %v", got)
	}
}

func t0Now() time.Time { return t0 }

func TestAmbiguousReleaseAsksForATarget(t *testing.T) {
	r := newRig(t)
	web := r.release("web", "prod1", mergedSHA, true)
	api := r.release("api", "prod1", mergedSHA, true) // the same tag releases two apps of the project
	reply, emojis := r.comment(mrIID, maintainer, "/pause")
	for _, want := range []string{"❓ `/pause` could mean 2 releases, so nothing was done. Name one:",
		"- `/pause " + web.ID + "`: web `v1-1-0` in prod1 on prod1-cluster · stage 1/3 · 0 % · paused by rel-manager",
		"- `/pause " + api.ID + "`: api `v1-1-0` in prod1 on prod1-cluster · stage 1/3"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if !slices.Equal(emojis, []string{"eyes", "x"}) {
		t.Errorf("emoji %v", emojis)
	}
	for _, rel := range []release.Release{web, api} {
		if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
			t.Errorf("%s: intents %v", rel.App, intents(got))
		}
	}
	// Naming the release settles it; it is paused already, which the reply says.
	reply, _ = r.comment(mrIID, maintainer, "/pause "+api.ID)
	if !strings.Contains(reply, "Cannot pause release `"+api.ID+"`") || !strings.Contains(reply, "it is already paused") {
		t.Errorf("reply: %s", reply)
	}
	reply, _ = r.comment(mrIID, maintainer, "/rollback "+api.ID)
	if !strings.Contains(reply, "✅ Recorded: rollback of release `"+api.ID+"`") {
		t.Errorf("reply: %s", reply)
	}
}

func TestStatusShowsEndedReleases(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	r.step(rel.ID, release.IntentAbort)
	for _, body := range []string{"/status", "/status prod1", "/status " + rel.ID} {
		reply, _ := r.comment(mrIID, reporter, body)
		if !strings.Contains(reply, "in prod1 on prod1-cluster): aborted at stage 1/3") {
			t.Errorf("%s: %s", body, reply)
		}
	}
	// An ended release takes no intent; the reply says why.
	reply, _ := r.comment(mrIID, maintainer, "/rollback "+rel.ID)
	if !strings.Contains(reply, "Cannot roll back release `"+rel.ID+"`") || !strings.Contains(reply, "it has already ended (Aborted)") {
		t.Errorf("rollback of an ended release: %s", reply)
	}
	reply, _ = r.comment(mrIID, maintainer, "/rollback")
	if !strings.Contains(reply, "no active release came from a commit of this merge request") {
		t.Errorf("rollback with only an ended release: %s", reply)
	}
}

func TestReleaseOfAnotherProject(t *testing.T) {
	r := newRig(t)
	rel, err := r.eng.Create(t.Context(), release.Release{
		App: "shop", Project: "shop/other", Environment: "prod1", Cluster: "c", Namespace: "shop",
		To:     release.Revision{Name: "v2", Image: "shop:2", SHA: mergedSHA},
		Params: templates.Params{Ports: []templates.Port{{Port: 80}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := r.comment(mrIID, maintainer, "/abort "+rel.ID)
	if !strings.Contains(reply, "there is no release `"+rel.ID+"` of shop/web") {
		t.Errorf("reply: %s", reply)
	}
	if got := r.get(rel.ID); len(got.Intents) != 0 {
		t.Errorf("a comment on shop/web acted on shop/other: %v", intents(got))
	}
}

// Without the release engine wired, release commands say so and do nothing.
func TestReleaseCommandsOff(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	r.cmds.Ops, r.cmds.Releases = nil, nil
	reply, emojis := r.comment(mrIID, maintainer, "/rollback")
	if !strings.Contains(reply, "staged releases are not available") || !slices.Equal(emojis, []string{"eyes", "x"}) {
		t.Errorf("reply %q, emoji %v", reply, emojis)
	}
	if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
		t.Errorf("intents %v", intents(got))
	}
}

// A delivery that could not be completed stays in the inbox; the command
// runs when it is retried, not now, so it never runs twice.
func TestReleaseCommandWaitsForTheDelivery(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	id := r.gl.AddNote(projectID, mrIID, fakegitlab.Note{Body: "/rollback", Author: maintainer.Username, AuthorID: maintainer.ID})
	n := &gitlabevent.Note{Project: gitlabevent.Project{ID: projectID, Path: project}, ID: id, Body: "/rollback", Action: "create",
		MergeRequest: &gitlabevent.MergeRequestRef{IID: mrIID}, User: maintainer}
	_, after := r.cmds.Handle(t.Context(), n)
	after(store.ErrNotFound)
	if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
		t.Errorf("intents %v", intents(got))
	}
	for _, note := range r.gl.Notes(projectID, mrIID) {
		if note.ID != id {
			t.Errorf("note %q", note.Body)
		}
	}
}

// A Note Hook is only what its sender says. shipbot reads the comment from
// GitLab and acts as its real author, with its real body; a comment GitLab
// does not have is not acted on at all.
func TestForgedNoteHookDoesNotAct(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	// A reporter writes "/status"; the hook claims a maintainer wrote
	// "/rollback".
	real := r.gl.AddNote(projectID, mrIID, fakegitlab.Note{Body: "/rollback", Author: reporter.Username, AuthorID: reporter.ID})
	forged := &gitlabevent.Note{Project: gitlabevent.Project{ID: projectID, Path: project}, ID: real, Body: "/rollback", Action: "create",
		NoteableType: "MergeRequest", MergeRequest: &gitlabevent.MergeRequestRef{IID: mrIID}, User: maintainer}
	if _, after := r.cmds.Handle(t.Context(), forged); after != nil {
		after(nil)
	}
	if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
		t.Errorf("a maintainer's forged name recorded intents %v", intents(got))
	}
	var reply string
	for _, note := range r.gl.Notes(projectID, mrIID) {
		if strings.Contains(note.Body, "shipbot:reply") {
			reply = note.Body
		}
	}
	if !strings.Contains(reply, reporter.Username) || strings.Contains(reply, maintainer.Username) {
		t.Errorf("reply %q, want it to refuse %s, the comment's real author", reply, reporter.Username)
	}

	// A note id GitLab does not have: nothing is recorded and nothing said.
	before := len(r.gl.Notes(projectID, mrIID))
	ghost := *forged
	ghost.ID = 999_999
	if _, after := r.cmds.Handle(t.Context(), &ghost); after != nil {
		after(nil)
	}
	if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
		t.Errorf("a note GitLab does not have recorded intents %v", intents(got))
	}
	if n := len(r.gl.Notes(projectID, mrIID)); n != before {
		t.Errorf("shipbot wrote %d notes about a note GitLab does not have", n-before)
	}
}

// Someone who is not a member of the project learns nothing of its
// releases from a command: not its environments, not its versions.
func TestNonMembersHearNothingOfReleases(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true)
	stranger := gitlabevent.User{ID: 999, Username: "stan"}
	for _, body := range []string{"/status", "/status prod1", "/status " + rel.ID, "/rollback"} {
		reply, _ := r.comment(mrIID, stranger, body)
		if !strings.Contains(reply, "not a member") {
			t.Errorf("%q from a non-member: reply %q, want that stan is not a member", body, reply)
		}
		for _, secret := range []string{"prod1", rel.To.Name, rel.ID, "v1"} {
			if strings.Contains(reply, secret) {
				t.Errorf("%q from a non-member: the reply reveals %q: %q", body, secret, reply)
			}
		}
	}
	if got := r.get(rel.ID); len(got.Intents) != len(rel.Intents) {
		t.Errorf("a non-member's command recorded %v", intents(got))
	}
}

func TestPromoteToAnyRatioByComment(t *testing.T) {
	r := newRig(t)
	rel := r.release("web", "prod1", mergedSHA, true, func(s *release.Release) { s.AnyWeight = true })
	reply, _ := r.comment(mrIID, maintainer, "/promote 20")
	if !strings.Contains(reply, "Recorded: promote to 20 % of release") {
		t.Errorf("reply:\n%s", reply)
	}
	if got := intents(r.get(rel.ID)); !slices.Contains(got, "mia/mr-comment/promote to 20 %") {
		t.Errorf("intents %v, want promote to 20 %% by mia", got)
	}
}

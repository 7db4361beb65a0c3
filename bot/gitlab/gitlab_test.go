package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

const (
	token   = "glpat-test-secret-token"
	project = int64(42)
	iid     = int64(7)
	sha     = "0123456789abcdef0123456789abcdef01234567"
)

// setup starts a fake GitLab and a client without retries, and fails the
// test if the client called anything the fake does not know.
func setup(t *testing.T, opts ...gitlab.Option) (*fakegitlab.Server, *gitlab.Client) {
	t.Helper()
	fake := fakegitlab.New(t, token)
	c, err := gitlab.New(fake.URL(), token, append([]gitlab.Option{gitlab.WithRetryMax(0)}, opts...)...)
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

func TestNotes(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: iid, Title: "Add login"})

	id, err := c.CreateMRNote(ctx, project, iid, "👀 deploying to review/add-login")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateMRNote(ctx, project, iid, id, "✅ deployed"); err != nil {
		t.Fatal(err)
	}
	for _, emoji := range []string{gitlab.EmojiEyes, gitlab.EmojiEyes, gitlab.EmojiCheck} {
		if err := c.AwardMRNoteEmoji(ctx, project, iid, id, emoji); err != nil {
			t.Fatalf("award %s: %v", emoji, err)
		}
	}

	notes := fake.Notes(project, iid)
	if len(notes) != 1 {
		t.Fatalf("notes = %+v, want one", notes)
	}
	n := notes[0]
	if n.ID != id || n.Body != "✅ deployed" || n.Author != fakegitlab.BotUsername {
		t.Errorf("note = %+v, want id %d, the updated body, by the bot", n, id)
	}
	if want := []string{"eyes", "white_check_mark"}; !slices.Equal(n.Emojis, want) {
		t.Errorf("emojis = %v, want %v", n.Emojis, want)
	}
}

func TestNotesNotFound(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: iid})

	if _, err := c.CreateMRNote(ctx, project, iid+1, "hi"); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("note on a missing MR: err = %v, want ErrNotFound", err)
	}
	if err := c.UpdateMRNote(ctx, project, iid, 999, "hi"); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("update of a missing note: err = %v, want ErrNotFound", err)
	}
	// The 404 of a repeated award must not hide the 404 of a missing note.
	if err := c.AwardMRNoteEmoji(ctx, project, iid, 999, gitlab.EmojiEyes); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("award on a missing note: err = %v, want ErrNotFound", err)
	}
	id, err := c.CreateMRNote(ctx, project, iid, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AwardMRNoteEmoji(ctx, project, iid, id, ":eyes:"); err == nil {
		t.Error("award of an emoji name with colons succeeded")
	}
	if got := fake.Notes(project, iid); len(got) != 1 || len(got[0].Emojis) != 0 {
		t.Errorf("notes = %+v, want one note without emoji", got)
	}
}

func TestAccessLevel(t *testing.T) {
	fake, c := setup(t)
	const group, parent = 5, 6
	fake.SetProjectGroups(project, group, parent)
	fake.SetMember(project, 100, 30)     // direct developer
	fake.SetGroupMember(parent, 101, 40) // maintainer of an ancestor group
	fake.SetMember(project, 102, 20)     // reporter here, owner of the group:
	fake.SetGroupMember(group, 102, 50)  // GitLab reports the highest
	fake.SetGroupMember(99, 103, 50)     // owner of an unrelated group
	fake.SetUser(fakegitlab.User{ID: 105, Username: "gone", State: "blocked"})
	fake.SetMember(project, 105, 40) // a maintainer, blocked since

	for _, tc := range []struct {
		user int64
		want gitlab.AccessLevel
	}{
		{100, gitlab.Developer},
		{101, gitlab.Maintainer},
		{102, gitlab.Owner},
		{103, gitlab.NoAccess},
		{104, gitlab.NoAccess},
		{105, gitlab.NoAccess},
	} {
		got, err := c.AccessLevel(t.Context(), project, tc.user)
		if err != nil || got != tc.want {
			t.Errorf("AccessLevel(user %d) = %v, %v; want %v", tc.user, got, err, tc.want)
		}
	}
}

func TestMergeRequest(t *testing.T) {
	fake, c := setup(t)
	updated := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	fake.SetMergeRequest(fakegitlab.MergeRequest{
		ProjectID: project, IID: iid, Title: "Add login", State: "merged",
		SourceBranch: "add-login", TargetBranch: "main", HeadSHA: sha,
		Labels: []string{"preview", "backend"}, UpdatedAt: updated,
		MergeCommitSHA: "m3rge", SquashCommitSHA: "squ4sh",
	})

	got, err := c.MergeRequest(t.Context(), project, iid)
	if err != nil {
		t.Fatal(err)
	}
	want := gitlab.MergeRequest{
		ProjectID: project, IID: iid, Title: "Add login", State: "merged",
		SourceBranch: "add-login", TargetBranch: "main", HeadSHA: sha,
		WebURL:    fmt.Sprintf("%s/group/project-%d/-/merge_requests/%d", fake.URL(), project, iid),
		Labels:    []string{"preview", "backend"},
		UpdatedAt: updated, MergeCommitSHA: "m3rge", SquashCommitSHA: "squ4sh",
	}
	if !equalMR(got, want) {
		t.Errorf("MergeRequest =\n%+v\nwant\n%+v", got, want)
	}

	fake.DeleteMergeRequest(project, iid)
	if _, err := c.MergeRequest(t.Context(), project, iid); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("deleted MR: err = %v, want ErrNotFound", err)
	}
}

func equalMR(a, b gitlab.MergeRequest) bool {
	return slices.Equal(a.Labels, b.Labels) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		fmt.Sprint(a.ProjectID, a.IID, a.Title, a.State, a.SourceBranch, a.TargetBranch, a.HeadSHA, a.WebURL, a.MergeCommitSHA, a.SquashCommitSHA) ==
			fmt.Sprint(b.ProjectID, b.IID, b.Title, b.State, b.SourceBranch, b.TargetBranch, b.HeadSHA, b.WebURL, b.MergeCommitSHA, b.SquashCommitSHA)
}

func TestMergeRequestsForCommit(t *testing.T) {
	fake, c := setup(t)
	var iids []int64
	for i := int64(1); i <= 25; i++ { // more than GitLab's default page of 20
		fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: i, HeadSHA: sha, SourceBranch: fmt.Sprint("b", i)})
		iids = append(iids, i)
	}
	fake.SetCommitMergeRequests(project, sha, iids...)
	fake.SetCommitMergeRequests(project, "lonely")

	mrs, err := c.MergeRequestsForCommit(t.Context(), project, sha)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, mr := range mrs {
		got = append(got, mr.IID)
		if mr.HeadSHA != sha || mr.ProjectID != project {
			t.Errorf("MR %+v lacks its head SHA or project", mr)
		}
	}
	if !slices.Equal(got, iids) {
		t.Errorf("iids = %v, want %v", got, iids)
	}

	if mrs, err := c.MergeRequestsForCommit(t.Context(), project, "lonely"); err != nil || len(mrs) != 0 {
		t.Errorf("commit in no MR: %v, %v; want none, nil", mrs, err)
	}
	if _, err := c.MergeRequestsForCommit(t.Context(), project, "unknown"); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("unknown commit: err = %v, want ErrNotFound", err)
	}
}

func TestEnsureEnvironment(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	const name = "review/add-login"

	id, err := c.EnsureEnvironment(ctx, project, name, "https://add-login.review.example.com")
	if err != nil {
		t.Fatal(err)
	}
	// A look-alike name must not be taken for ours.
	if _, err := c.EnsureEnvironment(ctx, project, "review/add-login-2", ""); err != nil {
		t.Fatal(err)
	}
	again, err := c.EnsureEnvironment(ctx, project, name, "https://add-login.review.example.com")
	if err != nil || again != id {
		t.Fatalf("second EnsureEnvironment = %d, %v; want %d", again, err, id)
	}
	moved, err := c.EnsureEnvironment(ctx, project, name, "https://login.review.example.com")
	if err != nil || moved != id {
		t.Fatalf("EnsureEnvironment with a new URL = %d, %v; want %d", moved, err, id)
	}
	if same, err := c.EnsureEnvironment(ctx, project, name, ""); err != nil || same != id {
		t.Fatalf("EnsureEnvironment without a URL = %d, %v; want %d", same, err, id)
	}

	envs := fake.Environments(project)
	if len(envs) != 2 {
		t.Fatalf("environments = %+v, want 2", envs)
	}
	if e := envs[0]; e.ID != id || e.Name != name || e.ExternalURL != "https://login.review.example.com" || e.State != "available" {
		t.Errorf("environment = %+v", e)
	}

	if _, err := c.EnsureEnvironment(ctx, project, "review/bad#name", ""); err == nil {
		t.Error("an environment name GitLab refuses was accepted")
	}
}

func TestStopEnvironment(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	id, err := c.EnsureEnvironment(ctx, project, "review/x", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // stopping twice is fine
		if err := c.StopEnvironment(ctx, project, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := fake.Environments(project)[0].State; got != "stopped" {
		t.Errorf("state = %q, want stopped", got)
	}
	if err := c.StopEnvironment(ctx, project, id+1000); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("stop of a missing environment: err = %v, want ErrNotFound", err)
	}

	// A successful deployment brings the environment back.
	dep, err := c.CreateDeployment(ctx, project, gitlab.Deployment{Environment: "review/x", Ref: "x", SHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateDeployment(ctx, project, dep, gitlab.DeploymentSuccess); err != nil {
		t.Fatal(err)
	}
	if got := fake.Environments(project)[0].State; got != "available" {
		t.Errorf("state after a successful deployment = %q, want available", got)
	}
}

func TestDeployments(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	d := gitlab.Deployment{Environment: "production", Ref: "v1.2.0", SHA: sha, Tag: true}

	id, err := c.CreateDeployment(ctx, project, d) // creates the environment, status running
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a replayed step sets success again
		if err := c.UpdateDeployment(ctx, project, id, gitlab.DeploymentSuccess); err != nil {
			t.Fatal(err)
		}
	}
	failed := d
	failed.Ref, failed.Tag, failed.Status = "main", false, gitlab.DeploymentFailed
	fid, err := c.CreateDeployment(ctx, project, failed)
	if err != nil {
		t.Fatal(err)
	}
	// GitLab hands back the last deployment when nothing differs.
	if again, err := c.CreateDeployment(ctx, project, failed); err != nil || again != fid {
		t.Errorf("repeated CreateDeployment = %d, %v; want %d", again, err, fid)
	}
	if err := c.UpdateDeployment(ctx, project, fid, gitlab.DeploymentRunning); err == nil {
		t.Error("failed -> running was accepted; GitLab refuses it")
	}

	want := []fakegitlab.Deployment{
		{ID: id, IID: 1, Environment: "production", Ref: "v1.2.0", SHA: sha, Tag: true, Status: "success"},
		{ID: fid, IID: 2, Environment: "production", Ref: "main", SHA: sha, Tag: false, Status: "failed"},
	}
	if got := fake.Deployments(project); !slices.Equal(got, want) {
		t.Errorf("deployments =\n%+v\nwant\n%+v", got, want)
	}
	if envs := fake.Environments(project); len(envs) != 1 || envs[0].Name != "production" {
		t.Errorf("environments = %+v, want production only", envs)
	}
	if err := c.UpdateDeployment(ctx, project, 1, gitlab.DeploymentSuccess); !errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("update of a missing deployment: err = %v, want ErrNotFound", err)
	}
}

func TestSetCommitStatus(t *testing.T) {
	fake, c := setup(t)
	ctx := t.Context()
	const name, url = "shipbot/review", "https://shipbot.example.com/r/1"
	steps := []struct{ state, desc string }{
		{gitlab.StatePending, "queued"},
		{gitlab.StateRunning, "deploying"},
		{gitlab.StateRunning, "still deploying"}, // GitLab refuses; not an error
		{gitlab.StateSuccess, "deployed"},
	}
	for _, s := range steps {
		if err := c.SetCommitStatus(ctx, project, sha, name, s.state, url, s.desc); err != nil {
			t.Fatalf("%s: %v", s.state, err)
		}
	}
	got := fake.Statuses(project, sha)
	if len(got) != 1 {
		t.Fatalf("statuses = %+v, want one record", got)
	}
	if s := got[0]; s.Name != name || s.State != "success" || s.Description != "deployed" || s.TargetURL != url {
		t.Errorf("status = %+v", s)
	}

	// A new run after a finished one starts a new record; going back is refused.
	if err := c.SetCommitStatus(ctx, project, sha, name, gitlab.StateRunning, url, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCommitStatus(ctx, project, sha, name, gitlab.StatePending, url, ""); err == nil {
		t.Error("running -> pending was accepted; GitLab refuses it")
	}
	if err := c.SetCommitStatus(ctx, project, sha, "", gitlab.StateFailed, "", ""); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, s := range fake.Statuses(project, sha) {
		states = append(states, s.Name+":"+s.State)
	}
	if want := []string{name + ":success", name + ":running", "default:failed"}; !slices.Equal(states, want) {
		t.Errorf("statuses = %v, want %v", states, want)
	}
}

func TestServerErrorNamesTheCall(t *testing.T) {
	fake, c := setup(t)
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: iid})
	fake.FailNext("POST", fmt.Sprintf("/projects/%d/merge_requests/%d/notes", project, iid), 500)

	_, err := c.CreateMRNote(t.Context(), project, iid, "hi")
	if err == nil {
		t.Fatal("no error from an injected 500")
	}
	var se *gitlab.StatusError
	if !errors.As(err, &se) || se.Code != 500 {
		t.Errorf("err = %v, want a *StatusError with code 500", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "create note on project 42 MR !7") || strings.Contains(msg, token) {
		t.Errorf("err = %q, want it to name the call and not the token", msg)
	}
	if n := fake.Notes(project, iid); len(n) != 0 {
		t.Errorf("notes = %+v, want none", n)
	}
}

func TestServerErrorIsRetried(t *testing.T) {
	fake := fakegitlab.New(t, token)
	c, err := gitlab.New(fake.URL()+"/api/v4", token) // the SDK's default retries
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNext("", "/projects/42/environments", 503)
	if _, err := c.EnsureEnvironment(t.Context(), project, "staging", ""); err != nil {
		t.Fatalf("one 503 was not retried: %v", err)
	}
	if envs := fake.Environments(project); len(envs) != 1 {
		t.Errorf("environments = %+v, want one", envs)
	}
}

func TestWrongToken(t *testing.T) {
	fake := fakegitlab.New(t, token)
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: iid})
	const wrong = "glpat-wrong-secret"
	c, err := gitlab.New(fake.URL(), wrong, gitlab.WithRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateMRNote(t.Context(), project, iid, "hi")
	if !errors.Is(err, gitlab.ErrUnauthorized) {
		t.Errorf("err = %v, want ErrUnauthorized", err)
	}
	if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), token)) {
		t.Errorf("err = %q contains a token", err)
	}
	if _, err := c.AccessLevel(t.Context(), project, 1); !errors.Is(err, gitlab.ErrUnauthorized) {
		t.Errorf("AccessLevel err = %v, want ErrUnauthorized, not a silent NoAccess", err)
	}
	if n := fake.Notes(project, iid); len(n) != 0 {
		t.Errorf("notes = %+v, want none", n)
	}
}

func TestCanceledContext(t *testing.T) {
	fake, c := setup(t)
	fake.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: project, IID: iid})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.MergeRequest(ctx, project, iid); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "gitlab.example.com", "ftp://gitlab.example.com", "https://", "://x"} {
		if _, err := gitlab.New(u, token); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	if _, err := gitlab.New("https://gitlab.example.com", ""); err == nil {
		t.Error("New with an empty token succeeded")
	}
	if _, err := gitlab.New("https://gitlab.example.com/", token); err != nil {
		t.Error(err)
	}
}

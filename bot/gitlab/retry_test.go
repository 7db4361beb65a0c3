package gitlab_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlab"
)

// A 500 or a 429 is retried, and the call succeeds once GitLab does.
func TestRetriesServerErrors(t *testing.T) {
	for _, code := range []int{500, 429} {
		fake, c := setup(t, gitlab.WithRetryMax(5))
		fake.FailNext("POST", "projects/42/statuses", code)
		if err := c.SetCommitStatus(t.Context(), project, sha, "shipbot/prod", "running", "", ""); err != nil {
			t.Errorf("after one %d: %v", code, err)
		}
		if n := fake.Calls(); n != 2 {
			t.Errorf("after one %d: %d calls, want 2", code, n)
		}
	}
}

// While GitLab answers 500, a call with a deadline returns GitLab's answer
// before the deadline, rather than retrying into it and saying only
// "context deadline exceeded".
func TestOutageErrorSaysWhatGitLabAnswered(t *testing.T) {
	fake, c := setup(t, gitlab.WithRetryMax(5))
	defer fake.Outage("", "projects", 500)()
	ctx, cancel := context.WithTimeout(t.Context(), 5500*time.Millisecond)
	defer cancel()
	err := c.SetCommitStatus(ctx, project, sha, "shipbot/prod", "running", "", "")
	var se *gitlab.StatusError
	if !errors.As(err, &se) || se.Code != 500 {
		t.Fatalf("error %v, want GitLab's 500", err)
	}
	if ctx.Err() != nil {
		t.Errorf("returned after the deadline: %v", err)
	}
	if n := fake.Calls(); n < 2 {
		t.Errorf("%d calls, want the 500 retried while time allowed", n)
	}
}

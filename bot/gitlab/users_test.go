package gitlab_test

import (
	"errors"
	"testing"

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/test/fakegitlab"
)

func TestProjectID(t *testing.T) {
	fake, c := setup(t)
	fake.SetProjectPath(project, "shop/web")
	fake.SetProjectPath(77, "platform/infra/deploy")

	for _, tc := range []struct {
		path    string
		want    int64
		wantErr error
	}{
		{"shop/web", project, nil},
		{"Shop/Web", project, nil}, // GitLab matches paths without regard to case
		{"platform/infra/deploy", 77, nil},
		{"shop/api", 0, gitlab.ErrNotFound},
	} {
		got, err := c.ProjectID(t.Context(), tc.path)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("ProjectID(%q) = %d, %v; want %d, %v", tc.path, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := c.ProjectID(t.Context(), " "); err == nil {
		t.Error("ProjectID of a blank path succeeded")
	}
}

func TestUserByUsername(t *testing.T) {
	fake, c := setup(t)
	fake.SetUser(fakegitlab.User{ID: 10, Username: "alice", Name: "Alice Liddell"})
	fake.SetUser(fakegitlab.User{ID: 11, Username: "alice2"})
	fake.SetUser(fakegitlab.User{ID: 12, Username: "mallory", State: "blocked"})

	for _, tc := range []struct {
		username string
		want     gitlab.User
		wantErr  error
	}{
		{"alice", gitlab.User{ID: 10, Username: "alice", Name: "Alice Liddell", State: "active"}, nil},
		{"@ALICE", gitlab.User{ID: 10, Username: "alice", Name: "Alice Liddell", State: "active"}, nil},
		{"mallory", gitlab.User{ID: 12, Username: "mallory", Name: "mallory", State: "blocked"}, nil},
		{"bob", gitlab.User{}, gitlab.ErrNotFound},
	} {
		got, err := c.UserByUsername(t.Context(), tc.username)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("UserByUsername(%q) = %+v, %v; want %+v, %v", tc.username, got, err, tc.want, tc.wantErr)
		}
	}
	if u, _ := c.UserByUsername(t.Context(), "mallory"); u.Active() {
		t.Error("a blocked user is active")
	}
}

func TestUserByEmail(t *testing.T) {
	users := []fakegitlab.User{
		{ID: 10, Username: "alice", Email: "alice@corp.example", PublicEmail: "alice@corp.example"},
		{ID: 11, Username: "bob", Email: "bob@corp.example"}, // private email only
		// A stranger whose display name contains alice's address: GitLab's
		// search returns them too.
		{ID: 12, Username: "eve", Name: "alice@corp.example", Email: "eve@evil.example"},
		{ID: 13, Username: "carol", Email: "carol@corp.example", PublicEmail: "shared@corp.example"},
		{ID: 14, Username: "dave", Email: "dave@corp.example", PublicEmail: "shared@corp.example"},
	}
	for _, tc := range []struct {
		name    string
		admin   bool
		email   string
		want    int64
		wantErr error
	}{
		{"public email", false, "alice@corp.example", 10, nil},
		{"public email, other case", false, "Alice@Corp.Example", 10, nil},
		{"private email needs an admin token", false, "bob@corp.example", 0, gitlab.ErrNotFound},
		{"private email with an admin token", true, "bob@corp.example", 11, nil},
		{"admin, primary email", true, "alice@corp.example", 10, nil},
		{"unknown", true, "nobody@corp.example", 0, gitlab.ErrNotFound},
		{"two users", false, "shared@corp.example", 0, gitlab.ErrAmbiguous},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, c := setup(t)
			fake.SetAdmin(tc.admin)
			for _, u := range users {
				fake.SetUser(u)
			}
			got, err := c.UserByEmail(t.Context(), tc.email)
			if got.ID != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("UserByEmail(%q) = %+v, %v; want user %d, %v", tc.email, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestUserLookupErrors(t *testing.T) {
	fake, c := setup(t)
	fake.SetUser(fakegitlab.User{ID: 10, Username: "alice", PublicEmail: "alice@corp.example"})
	fake.FailNext("GET", "/users", 500)
	if _, err := c.UserByUsername(t.Context(), "alice"); err == nil || errors.Is(err, gitlab.ErrNotFound) {
		t.Errorf("UserByUsername on a 500: err = %v, want a server error", err)
	}
	fake.FailNext("GET", "/users/10", 403)
	if _, err := c.UserByEmail(t.Context(), "alice@corp.example"); !errors.Is(err, gitlab.ErrUnauthorized) {
		t.Errorf("UserByEmail when GET /users/:id is refused: err = %v, want ErrUnauthorized", err)
	}
	if _, err := c.UserByEmail(t.Context(), "alice"); err == nil {
		t.Error("UserByEmail of a non-address succeeded")
	}
}

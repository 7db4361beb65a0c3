package fakegitlab_test

import (
	"encoding/json"
	"testing"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

func TestProjectByPath(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetProjectPath(42, "shop/web")

	for _, tc := range []struct {
		path     string
		code     int
		id       float64
		fullPath string
	}{
		{"/api/v4/projects/shop%2Fweb", 200, 42, "shop/web"},
		{"/api/v4/projects/SHOP%2Fweb", 200, 42, "shop/web"},
		{"/api/v4/projects/42", 200, 42, "shop/web"},
		{"/api/v4/projects/43", 200, 43, "group/project-43"},
		{"/api/v4/projects/shop%2Fapi", 404, 0, ""},
	} {
		r := call(t, s, "GET", tc.path, token, nil)
		if r.code != tc.code || (tc.code == 200 && (r.body["id"] != tc.id || r.body["path_with_namespace"] != tc.fullPath)) {
			t.Errorf("GET %s: %d %s", tc.path, r.code, r.raw)
		}
		if tc.code == 404 && r.body["message"] != "404 Project Not Found" {
			t.Errorf("GET %s: %s, want GitLab's 404 message", tc.path, r.raw)
		}
	}
	if r := call(t, s, "GET", "/api/v4/projects/shop%2Fweb", "", nil); r.code != 401 {
		t.Errorf("no token: %d", r.code)
	}
	if u := s.Unexpected(); len(u) != 0 {
		t.Errorf("unexpected = %v", u)
	}
}

// users decodes a list answer.
func users(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return out
}

func TestUsers(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetUser(fakegitlab.User{ID: 10, Username: "alice", Name: "Alice", Email: "alice@corp.example", PublicEmail: "alice@corp.example"})
	s.SetUser(fakegitlab.User{ID: 11, Username: "bob", Email: "bob@corp.example"})
	s.SetUser(fakegitlab.User{ID: 12, Username: "bobby", State: "blocked"})

	byName := users(t, call(t, s, "GET", "/api/v4/users?username=BOB", token, nil).raw)
	if len(byName) != 1 || byName[0]["id"] != 11.0 || byName[0]["state"] != "active" {
		t.Errorf("username=BOB: %v", byName)
	}
	if _, ok := byName[0]["email"]; ok {
		t.Errorf("a non-admin list shows emails: %v", byName[0])
	}
	if got := users(t, call(t, s, "GET", "/api/v4/users?search=bob", token, nil).raw); len(got) != 2 || got[0]["id"] != 12.0 {
		t.Errorf("search=bob: %v, want bobby then bob (id desc)", got)
	}
	// Private emails are searchable by administrators only.
	if got := users(t, call(t, s, "GET", "/api/v4/users?search=bob@corp.example", token, nil).raw); len(got) != 0 {
		t.Errorf("non-admin search by a private email: %v", got)
	}
	if got := users(t, call(t, s, "GET", "/api/v4/users?search=ALICE@corp.example", token, nil).raw); len(got) != 1 || got[0]["id"] != 10.0 {
		t.Errorf("search by a public email: %v", got)
	}

	r := call(t, s, "GET", "/api/v4/users/10", token, nil)
	if r.code != 200 || r.body["public_email"] != "alice@corp.example" || r.body["email"] != nil {
		t.Errorf("GET /users/10 as non-admin: %d %s", r.code, r.raw)
	}
	if r := call(t, s, "GET", "/api/v4/users/99", token, nil); r.code != 404 || r.body["message"] != "404 User Not Found" {
		t.Errorf("GET /users/99: %d %s", r.code, r.raw)
	}

	s.SetAdmin(true)
	got := users(t, call(t, s, "GET", "/api/v4/users?search=bob@corp.example", token, nil).raw)
	if len(got) != 1 || got[0]["email"] != "bob@corp.example" || got[0]["is_admin"] != false {
		t.Errorf("admin search by a private email: %v", got)
	}
	if r := call(t, s, "GET", "/api/v4/users?per_page=1&page=2", token, nil); r.header.Get("X-Total") != "3" || len(users(t, r.raw)) != 1 {
		t.Errorf("paginated list: %s %v", r.raw, r.header)
	}
}

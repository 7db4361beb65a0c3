package fakegitlab_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

const token = "secret"

type reply struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends one request; body is sent as JSON unless it is url.Values.
func call(t *testing.T, s *fakegitlab.Server, method, path, tok string, body any) reply {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, _ := json.Marshal(b)
		rd, ct = strings.NewReader(string(j)), "application/json"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("PRIVATE-TOKEN", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestRoutingAndAuth(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: 1, IID: 2})

	if r := call(t, s, "GET", "/api/v4/projects/1/merge_requests/2", "", nil); r.code != 401 || r.body["message"] != "401 Unauthorized" {
		t.Errorf("no token: %d %s", r.code, r.raw)
	}
	if r := call(t, s, "GET", "/api/v4/projects/1/merge_requests/2", "wrong", nil); r.code != 401 {
		t.Errorf("wrong token: %d", r.code)
	}
	if r := call(t, s, "GET", "/api/v4/projects/1/merge_requests/2", token, nil); r.code != 200 || r.body["state"] != "opened" {
		t.Errorf("get MR: %d %s", r.code, r.raw)
	}
	if len(s.Unexpected()) != 0 {
		t.Fatalf("unexpected = %v before any unknown call", s.Unexpected())
	}

	call(t, s, "GET", "/api/v4/projects/1/merge_requests", token, nil)              // unknown route
	call(t, s, "DELETE", "/api/v4/projects/1/merge_requests/2/notes/3", token, nil) // known path, unknown method
	call(t, s, "GET", "/api/v4/projects/group%2Fapp/merge_requests/2", token, nil)  // project by path
	want := []string{
		"GET /api/v4/projects/1/merge_requests",
		"DELETE /api/v4/projects/1/merge_requests/2/notes/3",
		"GET /api/v4/projects/group%2Fapp/merge_requests/2",
	}
	if got := s.Unexpected(); !slices.Equal(got, want) {
		t.Errorf("unexpected = %q, want %q", got, want)
	}
	if got := s.Calls(); got != 6 {
		t.Errorf("calls = %d, want 6", got)
	}
}

func TestFailNext(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.FailNext("post", "projects/1/environments", 502)
	s.FailNext("", "/api/v4/projects/1/environments", 429)

	env := map[string]any{"name": "staging"}
	if r := call(t, s, "GET", "/api/v4/projects/1/environments", token, nil); r.code != 429 {
		t.Errorf("GET took %d, want the any-method 429", r.code)
	}
	if r := call(t, s, "POST", "/api/v4/projects/1/environments", token, env); r.code != 502 {
		t.Errorf("POST took %d, want 502", r.code)
	}
	if r := call(t, s, "POST", "/api/v4/projects/1/environments", token, env); r.code != 201 {
		t.Errorf("after the failures: %d %s", r.code, r.raw)
	}
	if envs := s.Environments(1); len(envs) != 1 {
		t.Errorf("environments = %+v, want one", envs)
	}
}

func TestAwardRepeatedIs404(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: 1, IID: 2})
	// A form body works too, as it does on GitLab.
	r := call(t, s, "POST", "/api/v4/projects/1/merge_requests/2/notes", token, url.Values{"body": {"hi"}})
	if r.code != 201 {
		t.Fatalf("create note: %d %s", r.code, r.raw)
	}
	awards := "/api/v4/projects/1/merge_requests/2/notes/" + jsonNumber(r.body["id"]) + "/award_emoji"
	if r := call(t, s, "POST", awards, token, map[string]string{"name": "eyes"}); r.code != 201 || r.body["awardable_type"] != "Note" {
		t.Errorf("first award: %d %s", r.code, r.raw)
	}
	r = call(t, s, "POST", awards, token, map[string]string{"name": "eyes"})
	if r.code != 404 || r.body["message"] != "404 Award Emoji Name has already been taken Not Found" {
		t.Errorf("second award: %d %s", r.code, r.raw)
	}
	if r := call(t, s, "POST", awards, token, map[string]string{}); r.code != 400 || r.body["error"] != "name is missing" {
		t.Errorf("award without name: %d %s", r.code, r.raw)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNotesListing(t *testing.T) {
	s := fakegitlab.New(t, token)
	s.SetMergeRequest(fakegitlab.MergeRequest{ProjectID: 1, IID: 2})
	notes := "/api/v4/projects/1/merge_requests/2/notes"
	for _, b := range []string{"one", "two", "three"} {
		call(t, s, "POST", notes, token, map[string]string{"body": b})
	}
	if r := call(t, s, "POST", notes, token, map[string]string{"body": "  "}); r.code != 400 {
		t.Errorf("blank note: %d", r.code)
	}

	r := call(t, s, "GET", notes+"?per_page=2", token, nil)
	var page []map[string]any
	_ = json.Unmarshal([]byte(r.raw), &page)
	if len(page) != 2 || page[0]["body"] != "three" || r.header.Get("X-Next-Page") != "2" || r.header.Get("X-Total") != "3" {
		t.Errorf("first page (newest first): %s, headers %v", r.raw, r.header)
	}
	r = call(t, s, "GET", notes+"?per_page=2&page=2&sort=asc", token, nil)
	_ = json.Unmarshal([]byte(r.raw), &page)
	if len(page) != 1 || page[0]["body"] != "three" || r.header.Get("X-Next-Page") != "" {
		t.Errorf("last page ascending: %s", r.raw)
	}
	if got := s.Notes(1, 2); len(got) != 3 || got[0].Body != "one" {
		t.Errorf("Notes = %+v", got)
	}
}

func TestDeploymentParams(t *testing.T) {
	s := fakegitlab.New(t, token)
	deps := "/api/v4/projects/1/deployments"
	r := call(t, s, "POST", deps, token, map[string]any{"environment": "prod", "sha": "abc", "ref": "main", "status": "running"})
	if r.code != 400 || r.body["error"] != "tag is missing" {
		t.Errorf("without tag: %d %s", r.code, r.raw)
	}
	r = call(t, s, "POST", deps, token, map[string]any{"environment": "prod", "sha": "abc", "ref": "main", "tag": false, "status": "created"})
	if r.code != 400 || r.body["error"] != "status does not have a valid value" {
		t.Errorf("status created: %d %s", r.code, r.raw)
	}
	r = call(t, s, "POST", deps, token, map[string]any{"environment": "prod", "sha": "abc", "ref": "main", "tag": false, "status": "success"})
	env, _ := r.body["environment"].(map[string]any)
	if r.code != 201 || r.body["status"] != "success" || env["name"] != "prod" || env["state"] != "available" {
		t.Errorf("create: %d %s", r.code, r.raw)
	}
	r = call(t, s, "PUT", deps+"/"+jsonNumber(r.body["id"]), token, map[string]any{"status": "running"})
	if r.code != 400 {
		t.Errorf("success -> running: %d %s", r.code, r.raw)
	}
	if got := s.Deployments(1); len(got) != 1 || got[0].Status != "success" {
		t.Errorf("deployments = %+v", got)
	}
}

func TestCommitStatusTransitions(t *testing.T) {
	s := fakegitlab.New(t, token)
	path := "/api/v4/projects/1/statuses/abc"
	for _, tc := range []struct {
		state string
		code  int
	}{
		{"pending", 201},
		{"pending", 400},
		{"running", 201},
		{"running", 400},
		{"skipped", 400},
		{"success", 201},
		{"pending", 201}, // a new record
	} {
		if r := call(t, s, "POST", path, token, map[string]string{"state": tc.state, "context": "ci"}); r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.state, r.code, r.raw, tc.code)
		}
	}
	got := s.Statuses(1, "abc")
	if len(got) != 2 || got[0].State != "success" || got[1].State != "pending" || got[1].Name != "ci" {
		t.Errorf("statuses = %+v", got)
	}
}

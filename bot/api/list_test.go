package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/deployer/release"
)

func (r *rig) list(t *testing.T, query string) api.Page {
	t.Helper()
	return getOK[api.Page](t, r, "/api/v1/releases?"+query)
}

func ids(p api.Page) []string {
	out := []string{}
	for _, r := range p.Items {
		out = append(out, r.ID)
	}
	return out
}

func TestListPagesNewestFirst(t *testing.T) {
	r := newRig(t, token)
	var want []string
	for i := range 7 {
		rel := r.create(t, canary(fmt.Sprintf("app%d", i), "prod"))
		want = append([]string{rel.ID}, want...)
	}
	var got []string
	pages := 0
	for q := "limit=3"; ; {
		p := r.list(t, q)
		pages++
		if len(p.Items) > 3 {
			t.Fatalf("page %d has %d items, limit 3", pages, len(p.Items))
		}
		got = append(got, ids(p)...)
		if p.Next == "" {
			break
		}
		q = "limit=3&cursor=" + url.QueryEscape(p.Next)
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}
	all := r.list(t, "")
	if !slices.Equal(ids(all), want) || all.Next != "" {
		t.Errorf("default limit: %v next %q", ids(all), all.Next)
	}
	// An exactly full last page has no next.
	if p := r.list(t, "limit=7"); len(p.Items) != 7 || p.Next != "" {
		t.Errorf("limit=7: %d items, next %q", len(p.Items), p.Next)
	}
}

func TestListDefaultLimit(t *testing.T) {
	r := newRig(t, token)
	for i := range api.DefaultLimit + 2 {
		r.create(t, canary(fmt.Sprintf("app%d", i), "prod"))
	}
	p := r.list(t, "")
	if len(p.Items) != api.DefaultLimit || p.Next == "" {
		t.Errorf("%d items, next %q; want %d and a next page", len(p.Items), p.Next, api.DefaultLimit)
	}
	if rest := r.list(t, "cursor="+p.Next); len(rest.Items) != 2 || rest.Next != "" {
		t.Errorf("second page: %v next %q", ids(rest), rest.Next)
	}
}

func TestListFilters(t *testing.T) {
	r := newRig(t, token)
	web := r.create(t, canary("web", "prod"))
	api1 := r.create(t, canary("api", "prod"))
	staging := r.create(t, canary("web", "staging"))
	other := canary("web", "dev")
	other.Cluster, other.Project, other.TriggeredBy = "c2", "shop/site", "dave"
	dev := r.create(t, other)
	r.setState(t, web.ID, release.Succeeded, 3, 100)
	r.setState(t, staging.ID, release.Paused, 1, 10)
	if code, b := r.act(t, api1.ID, "pause", ""); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, b)
	}
	since := url.QueryEscape(t0.Add(time.Minute).Format(time.RFC3339))
	until := url.QueryEscape(t0.Add(3 * time.Minute).Format(time.RFC3339))
	tests := []struct {
		query string
		want  []string
	}{
		{"app=web", []string{dev.ID, staging.ID, web.ID}},
		{"environment=prod", []string{api1.ID, web.ID}},
		{"cluster=c2", []string{dev.ID}},
		{"project=shop/web", []string{staging.ID, web.ID}},
		{"phase=Succeeded", []string{web.ID}},
		{"phase=paused,succeeded", []string{staging.ID, web.ID}},
		{"phase=paused&phase=pending", []string{dev.ID, staging.ID, api1.ID}},
		{"active=true", []string{dev.ID, staging.ID, api1.ID}},
		{"active=false", []string{web.ID}},
		{"active=true&phase=Succeeded", []string{}},
		{"active=true&phase=Succeeded,Paused", []string{staging.ID}},
		{"user=dave", []string{dev.ID}},
		{"user=alice", []string{api1.ID}}, // acted on it
		{"since=" + since, []string{dev.ID, staging.ID, api1.ID}},
		{"since=" + since + "&until=" + until, []string{staging.ID, api1.ID}},
		{"app=web&environment=prod", []string{web.ID}},
		{"app=nope", []string{}},
	}
	for _, tt := range tests {
		p := r.list(t, tt.query)
		if got := ids(p); !slices.Equal(got, tt.want) {
			t.Errorf("?%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	// A list shows where releases stand; the history is in GET /releases/:id.
	_, raw := r.do(t, http.MethodGet, "/api/v1/releases", "")
	if strings.Contains(string(raw), dbPassword) {
		t.Errorf("list serves rendering params: %s", raw)
	}
	p := r.list(t, "app=api")
	if it := p.Items[0]; len(it.History) != 0 || len(it.Intents) != 0 || it.Summary == "" || len(it.Stages) != 3 {
		t.Errorf("list item %+v", it)
	}
}

func TestListBadQuery(t *testing.T) {
	r := newRig(t, token)
	tests := []struct{ query, errPrefix string }{
		{"limit=0", `limit: "0" is not a number in 1..500`},
		{"limit=501", `limit: "501" is not a number in 1..500`},
		{"limit=ten", "limit: "},
		{"since=yesterday", `since: "yesterday" is not an RFC3339 time`},
		{"until=2026-03-01", "until: "},
		{"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until: must be after since"},
		{"phase=Done", `phase: unknown phase "Done" (phases: Pending, Progressing`},
		{"phase=Paused,", `phase: unknown phase ""`},
		{"active=maybe", `active: "maybe" is not true or false`},
		{"app=a&app=b", "app: given 2 times"},
		{"env=prod", "env: unknown query parameter (known: project, app, environment"},
	}
	for _, tt := range tests {
		code, b := r.do(t, http.MethodGet, "/api/v1/releases?"+tt.query, "")
		if code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, b), tt.errPrefix) {
			t.Errorf("?%s: %d %s, want 400 starting %q", tt.query, code, b, tt.errPrefix)
		}
	}
}

package api

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/deployer/release"
)

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=3&cursor=r000000000004", "phase=paused,Succeeded&phase=pending&active=true",
		"since=2026-03-01T10:00:00Z&until=2026-03-02T10:00:00+08:00", "app=a&app=b", "limit=-1", "x=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, what, err := parseListQuery(v)
		if err != nil {
			if what == "" {
				t.Errorf("%q: error %v names no parameter", raw, err)
			}
			return
		}
		if q.limit < 1 || q.limit > MaxLimit {
			t.Errorf("%q: limit %d", raw, q.limit)
		}
		for _, p := range q.filter.Phases {
			if !p.Valid() {
				t.Errorf("%q: phase %q", raw, p)
			}
		}
		// Only active= can leave no phase to match; without it, no phases
		// means every phase.
		if q.none != (strings.TrimSpace(v.Get("active")) != "" && len(q.filter.Phases) == 0) {
			t.Errorf("%q: none = %v with phases %v", raw, q.none, q.filter.Phases)
		}
	})
}

func FuzzControlBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"percent": 50}`, `{"full": true, "comment": "x"}`, `{"percent": "x"}`, `{} {}`, `[]`, `{"coment": 1}`, `{"percent": 1e3}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		body, err := parseBody([]byte(raw))
		if err != nil {
			return
		}
		for _, action := range actions {
			in := release.Intent{Kind: release.IntentKind(action)}
			if _, err := promotion(action, body, &in); err != nil {
				continue
			}
			ok := slices.Contains([]release.IntentKind{release.IntentContinue, release.IntentPause, release.IntentPromote,
				release.IntentPromoteFull, release.IntentRollback, release.IntentAbort}, in.Kind)
			if !ok || (in.Kind == release.IntentPromote && (in.Percent < 1 || in.Percent > 100)) {
				t.Errorf("%q %s: accepted as %+v", raw, action, in)
			}
		}
	})
}

func FuzzParseRecordQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=3&cursor=d000000000004", "status=Failed,running&status=pending", "ref=dev&user=alice&app=web",
		"since=2026-03-01T10:00:00Z&until=2026-03-02T10:00:00+08:00", "ref=a&ref=b", "limit=501", "phase=Paused",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, list := range []struct{ params, statuses []string }{
			{deploymentParams, deploymentStatuses}, {previewParams, previewStatuses},
		} {
			q, what, err := parseRecordQuery(v, list.params, list.statuses)
			if err != nil {
				if what == "" {
					t.Errorf("%q: error %v names no parameter", raw, err)
				}
				continue
			}
			if q.limit < 1 || q.limit > MaxLimit {
				t.Errorf("%q: limit %d", raw, q.limit)
			}
			for _, s := range q.statuses {
				if !slices.Contains(list.statuses, s) {
					t.Errorf("%q: status %q", raw, s)
				}
			}
			if !q.since.IsZero() && !q.until.IsZero() && !q.since.Before(q.until) {
				t.Errorf("%q: since %v not before until %v", raw, q.since, q.until)
			}
		}
	})
}

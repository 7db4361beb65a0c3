package gitlabstatus

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/bot/gitlab"
)

// target is what the tracer knows of one commit in one environment: what
// each app in each cluster last reported and the status last posted for
// them all.
type target struct {
	parts  map[part]report
	posted report // zero until a post succeeded
}

// part is one app in one cluster: one deploy or release at a time.
type part struct{ app, cluster string }

// report is a commit status as posted.
type report struct{ state, desc, url string }

func (r report) same(o report) bool { return r.state == o.state && r.desc == o.desc }

// maxTargets bounds the commits the tracer remembers; beyond it, those
// whose status is final are forgotten.
const maxTargets = 1000

// maxDescription is GitLab's limit on a commit status description.
const maxDescription = 255

// status posts the environment's status of the commit, combined over its
// apps and clusters, unless it is what was posted last or GitLab would
// refuse it. It reports whether it posted.
func (t *Tracer) status(ctx context.Context, rec record) (bool, error) {
	if rec.state == "" || rec.sha == "" {
		return false, nil
	}
	k := fmt.Sprintf("%d/%s/%s", rec.projectID, rec.sha, rec.env)
	t.mu.Lock()
	tg := t.targets[k]
	if tg == nil {
		tg = &target{parts: map[part]report{}}
		t.targets[k] = tg
	}
	tg.parts[part{rec.app, rec.cluster}] = report{state: rec.state, desc: rec.desc, url: rec.targetURL}
	want := combine(tg.parts, tg.posted)
	posted := tg.posted
	t.mu.Unlock()
	if want.same(posted) || refused(posted.state, want.state) {
		return false, nil
	}
	err := t.api.SetCommitStatus(ctx, rec.projectID, rec.sha, StatusPrefix+rec.env, want.state, want.url, truncate(want.desc))
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tg.posted = want
	t.prune()
	return true, nil
}

// combine turns the parts' reports into the one status of the environment:
// in progress while any part is, then failed if any failed, canceled if
// any was canceled, else success. With more than one part the description
// names the one it comes from.
func combine(parts map[part]report, posted report) report {
	order := slices.SortedFunc(maps.Keys(parts), func(a, b part) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.cluster, b.cluster))
	})
	by := map[string][]part{}
	apps, clusters := map[string]bool{}, map[string]bool{}
	for _, p := range order {
		by[parts[p].state] = append(by[parts[p].state], p)
		apps[p.app], clusters[p.cluster] = true, true
	}
	pick := func(ps []part) report {
		p, r := ps[0], parts[ps[0]]
		switch {
		case len(apps) > 1 && len(clusters) > 1:
			r.desc = p.app + " on " + p.cluster + ": " + r.desc
		case len(apps) > 1:
			r.desc = p.app + ": " + r.desc
		case len(clusters) > 1:
			r.desc = p.cluster + ": " + r.desc
		}
		return r
	}
	switch {
	case len(by[gitlab.StateRunning]) > 0:
		return pick(by[gitlab.StateRunning])
	case len(by[gitlab.StatePending]) > 0:
		r := pick(by[gitlab.StatePending])
		// GitLab moves a status from pending to running, never back: once
		// one part has begun, the environment stays running.
		if len(by[gitlab.StatePending]) < len(parts) || posted.state == gitlab.StateRunning {
			r.state = gitlab.StateRunning
		}
		return r
	case len(by[gitlab.StateFailed]) > 0:
		return pick(by[gitlab.StateFailed])
	case len(by[gitlab.StateCanceled]) > 0:
		return pick(by[gitlab.StateCanceled])
	case len(by[gitlab.StateSuccess]) > 0:
		return pick(by[gitlab.StateSuccess])
	}
	return pick(order)
}

// refused reports whether GitLab would refuse to move a commit status from
// one state to the other: it updates a pending or running record only to a
// different state, and answers a re-post of the same state, even with a new
// description, with 400 "Cannot transition status". A final record is not
// updated; a post after it starts a new one, which GitLab accepts.
func refused(from, to string) bool {
	return from == to && (from == gitlab.StatePending || from == gitlab.StateRunning)
}

// final reports whether a status state is an end state.
func final(state string) bool {
	return state == gitlab.StateSuccess || state == gitlab.StateFailed || state == gitlab.StateCanceled
}

// prune forgets commits whose status is final and deployment records that
// are closed, once there are too many. Callers hold t.mu.
func (t *Tracer) prune() {
	if len(t.targets) > maxTargets {
		for k, tg := range t.targets {
			if final(tg.posted.state) {
				delete(t.targets, k)
			}
		}
	}
	if len(t.deploys) > maxTargets {
		for k, d := range t.deploys {
			if d.closed {
				delete(t.deploys, k)
			}
		}
	}
}

func truncate(s string) string {
	if r := []rune(s); len(r) > maxDescription {
		return strings.TrimSpace(string(r[:maxDescription-1])) + "…"
	}
	return s
}

package trace

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/bot/gitlab"
)

// target is what the tracer knows of one commit in one environment: what
// each cluster last reported and the status last posted for them all.
type target struct {
	clusters map[string]report
	posted   report // zero until a post succeeded
}

// report is a commit status as posted.
type report struct{ state, desc, url string }

func (r report) same(o report) bool { return r.state == o.state && r.desc == o.desc }

// maxTargets bounds the commits the tracer remembers; beyond it, those
// whose status is final are forgotten.
const maxTargets = 1000

// maxDescription is GitLab's limit on a commit status description.
const maxDescription = 255

// status posts the environment's status of the commit, combined over its
// clusters, unless it is what was posted last.
func (t *Tracer) status(ctx context.Context, rec record) error {
	if rec.state == "" || rec.sha == "" {
		return nil
	}
	k := fmt.Sprintf("%d/%s/%s", rec.projectID, rec.sha, rec.env)
	t.mu.Lock()
	tg := t.targets[k]
	if tg == nil {
		tg = &target{clusters: map[string]report{}}
		t.targets[k] = tg
	}
	tg.clusters[rec.cluster] = report{state: rec.state, desc: rec.desc, url: rec.targetURL}
	want := combine(tg.clusters, tg.posted)
	posted := tg.posted
	t.mu.Unlock()
	if want.same(posted) {
		return nil
	}
	err := t.api.SetCommitStatus(ctx, rec.projectID, rec.sha, StatusPrefix+rec.env, want.state, want.url, truncate(want.desc))
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tg.posted = want
	t.prune()
	return nil
}

// combine turns the clusters' reports into the one status of the
// environment: in progress while any cluster is, then failed if any
// failed, canceled if any was canceled, else success. With more than one
// cluster the description names the one it comes from.
func combine(clusters map[string]report, posted report) report {
	by := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(clusters)) {
		s := clusters[name].state
		by[s] = append(by[s], name)
	}
	pick := func(names []string) report {
		r := clusters[names[0]]
		if len(clusters) > 1 {
			r.desc = names[0] + ": " + r.desc
		}
		return r
	}
	switch {
	case len(by[gitlab.StateRunning]) > 0:
		return pick(by[gitlab.StateRunning])
	case len(by[gitlab.StatePending]) > 0:
		r := pick(by[gitlab.StatePending])
		// GitLab moves a status from pending to running, never back: once
		// one cluster has begun, the environment stays running.
		if len(by[gitlab.StatePending]) < len(clusters) || (posted.state != "" && posted.state != gitlab.StatePending) {
			r.state = gitlab.StateRunning
		}
		return r
	case len(by[gitlab.StateFailed]) > 0:
		return pick(by[gitlab.StateFailed])
	case len(by[gitlab.StateCanceled]) > 0:
		return pick(by[gitlab.StateCanceled])
	}
	return pick(by[gitlab.StateSuccess])
}

// final reports whether a status state is an end state.
func final(state string) bool {
	return state == gitlab.StateSuccess || state == gitlab.StateFailed || state == gitlab.StateCanceled
}

// prune forgets commits whose status is final once there are too many.
// Callers hold t.mu.
func (t *Tracer) prune() {
	if len(t.targets) <= maxTargets {
		return
	}
	for k, tg := range t.targets {
		if final(tg.posted.state) {
			delete(t.targets, k)
		}
	}
}

func truncate(s string) string {
	if r := []rune(s); len(r) > maxDescription {
		return strings.TrimSpace(string(r[:maxDescription-1])) + "…"
	}
	return s
}

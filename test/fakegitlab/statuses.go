package fakegitlab

import (
	"fmt"
	"net/http"
	"slices"
)

var commitStates = []string{"pending", "running", "success", "failed", "canceled", "skipped"}

// statusEvents maps a requested commit status state to the CommitStatus
// state machine's event and the states it may leave from. A fresh record
// starts "created"; "running" first enqueues it, so created -> running works.
var statusEvents = map[string]struct {
	event string
	from  []string
}{
	"pending":  {"enqueue", []string{"created"}},
	"running":  {"run", []string{"created", "pending"}},
	"success":  {"success", []string{"created", "pending", "running"}},
	"failed":   {"drop", []string{"created", "pending", "running"}},
	"canceled": {"cancel", []string{"created", "pending", "running"}},
	"skipped":  {"skip", []string{"created", "pending"}},
}

// setCommitStatus mirrors POST /projects/:id/statuses/:sha: it updates the
// pending or running record with the same name and ref, or starts a new one,
// and refuses a state the record cannot move to, re-posting its current
// state included, with GitLab's 400 "Cannot transition status via ...".
// Unlike GitLab it accepts any sha and leaves ref empty when none is given.
func (s *Server) setCommitStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return
	}
	if ps.missing(w, "state") || ps.oneOf(w, "state", commitStates...) {
		return
	}
	state, _ := ps.str("state")
	name := "default"
	for _, k := range []string{"name", "context"} {
		if v, ok := ps.str(k); ok && v != "" {
			name = v
			break
		}
	}
	ref, _ := ps.str("ref")
	targetURL, hasURL := ps.str("target_url")
	if hasURL && !validURL(targetURL) {
		apiError(w, http.StatusBadRequest, map[string][]string{"target_url": {"is blocked: Only allowed schemes are http, https"}})
		return
	}
	sha := r.PathValue("sha")
	st := p.activeStatus(sha, name, ref)
	current := "created"
	if st != nil {
		current = st.State
	}
	ev := statusEvents[state]
	if !slices.Contains(ev.from, current) {
		apiError(w, http.StatusBadRequest, fmt.Sprintf(
			"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")", ev.event, current, ev.event))
		return
	}
	now := s.clock()
	if st == nil {
		st = &status{Status: Status{ID: s.nextID("status"), SHA: sha, Ref: ref, Name: name}, createdAt: now}
		p.statuses = append(p.statuses, st)
	}
	st.State = state
	if hasURL {
		st.TargetURL = targetURL
	}
	if d, ok := ps.str("description"); ok {
		st.Description = d
	}
	if state == "running" && st.startedAt.IsZero() {
		st.startedAt = now
	}
	if state != "pending" && state != "running" {
		st.finishedAt = now
	}
	writeJSON(w, http.StatusCreated, s.statusJSON(st))
}

// activeStatus is the pending or running record GitLab would update, if any.
func (p *project) activeStatus(sha, name, ref string) *status {
	for _, st := range slices.Backward(p.statuses) {
		if st.SHA == sha && st.Name == name && st.Ref == ref && (st.State == "pending" || st.State == "running") {
			return st
		}
	}
	return nil
}

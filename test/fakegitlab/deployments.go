package fakegitlab

import (
	"fmt"
	"net/http"
	"slices"
)

// deployEvents maps a requested deployment status to GitLab's state machine
// event and the states it may leave from (Deployment's state_machine).
var deployEvents = map[string]struct {
	event string
	from  func(string) bool
}{
	"running":  {"run", func(s string) bool { return s == "created" || s == "blocked" }},
	"success":  {"succeed", func(s string) bool { return s != "success" }},
	"failed":   {"drop", func(s string) bool { return s != "failed" }},
	"canceled": {"cancel", func(s string) bool { return s != "canceled" }},
}

var deployStatuses = []string{"running", "success", "failed", "canceled"}

func (s *Server) deploymentJSON(p *project, d *deployment) deploymentJSON {
	j := deploymentJSON{ID: d.ID, IID: d.IID, Ref: d.Ref, SHA: d.SHA, Status: d.Status,
		CreatedAt: d.createdAt, UpdatedAt: d.updatedAt, User: s.bot()}
	for _, e := range p.envs {
		if e.ID == d.envID {
			j.Environment = envToJSON(e)
		}
	}
	return j
}

// deployment resolves :deployment_id, answering 404 when it does not exist. Callers hold s.mu.
func (s *Server) deployment(w http.ResponseWriter, r *http.Request) (*project, *deployment, bool) {
	p, ok := s.project(w, r)
	if !ok {
		return nil, nil, false
	}
	id, ok := pathInt(w, r, "deployment_id")
	if !ok {
		return nil, nil, false
	}
	for _, d := range p.deployments {
		if d.ID == id {
			return p, d, true
		}
	}
	apiError(w, http.StatusNotFound, "404 Not found")
	return nil, nil, false
}

// createDeployment mirrors POST /projects/:id/deployments: it creates the
// environment if needed and, like Deployments::CreateService, returns the
// environment's last deployment when ref, tag, sha and status all match it.
// Unlike GitLab it does not check that ref and sha exist in a repository.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) {
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
	if ps.missing(w, "environment", "sha", "ref", "tag", "status") || ps.oneOf(w, "status", deployStatuses...) {
		return
	}
	tag, ok := ps.boolean("tag")
	if !ok {
		paramError(w, "tag is invalid")
		return
	}
	envName, _ := ps.str("environment")
	ref, _ := ps.str("ref")
	sha, _ := ps.str("sha")
	st, _ := ps.str("status")
	env := p.envByName(envName)
	if env == nil {
		if e := s.envInvalid(p, envName, ""); e != nil {
			apiError(w, http.StatusBadRequest, e)
			return
		}
		env = s.addEnv(p, envName, "")
	}
	if last := p.lastDeployment(env.ID); last != nil &&
		last.Ref == ref && last.Tag == tag && last.SHA == sha && last.Status == st {
		writeJSON(w, http.StatusCreated, s.deploymentJSON(p, last))
		return
	}
	now := s.clock()
	d := &deployment{
		Deployment: Deployment{ID: s.nextID("deployment"), IID: int64(len(p.deployments) + 1),
			Environment: envName, Ref: ref, SHA: sha, Tag: tag, Status: "created"},
		envID: env.ID, createdAt: now, updatedAt: now,
	}
	p.deployments = append(p.deployments, d)
	s.transition(p, d, st)
	writeJSON(w, http.StatusCreated, s.deploymentJSON(p, d))
}

func (p *project) lastDeployment(envID int64) *deployment {
	for _, d := range slices.Backward(p.deployments) {
		if d.envID == envID {
			return d
		}
	}
	return nil
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, d, ok := s.deployment(w, r); ok {
		writeJSON(w, http.StatusOK, s.deploymentJSON(p, d))
	}
}

// updateDeployment refuses transitions GitLab's state machine refuses, such
// as success -> success, with GitLab's 400.
func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, d, ok := s.deployment(w, r)
	if !ok {
		return
	}
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return
	}
	if ps.missing(w, "status") || ps.oneOf(w, "status", deployStatuses...) {
		return
	}
	st, _ := ps.str("status")
	if ev := deployEvents[st]; !ev.from(d.Status) {
		apiError(w, http.StatusBadRequest, map[string][]string{"status": {fmt.Sprintf("cannot transition via %q", ev.event)}})
		return
	}
	s.transition(p, d, st)
	writeJSON(w, http.StatusOK, s.deploymentJSON(p, d))
}

// transition moves d to st; a success starts its environment again, as
// GitLab's Deployments::UpdateEnvironmentService does. Callers hold s.mu.
func (s *Server) transition(p *project, d *deployment, st string) {
	d.Status, d.updatedAt = st, s.clock()
	if st != "success" {
		return
	}
	for _, e := range p.envs {
		if e.ID == d.envID && e.State != "available" {
			e.State, e.updatedAt = "available", d.updatedAt
		}
	}
}

package fakegitlab

import (
	"fmt"
	"slices"
	"time"
)

// MergeRequest is a merge request the fake serves; SetMergeRequest fills the zero fields.
type MergeRequest struct {
	ProjectID, IID  int64
	Title           string
	Description     string
	State           string // opened (the default), closed, locked or merged
	SourceBranch    string
	TargetBranch    string
	HeadSHA         string // served as "sha" and diff_refs.head_sha
	WebURL          string // defaults to <URL>/group/project-<id>/-/merge_requests/<iid>
	Labels          []string
	Author          string // username, defaults to "developer"
	UpdatedAt       time.Time
	MergeCommitSHA  string
	SquashCommitSHA string
}

// Note is a comment on a merge request, with the names of the emoji awarded on it.
type Note struct {
	ID        int64
	Body      string
	Emojis    []string
	Author    string
	AuthorID  int64 // BotUserID when 0
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Environment is a project's environment; State is "available" or "stopped".
type Environment struct {
	ID          int64
	Name        string
	Slug        string
	ExternalURL string
	State       string
}

// Deployment is a deployment created through the API.
type Deployment struct {
	ID          int64
	IID         int64
	Environment string
	Ref         string
	SHA         string
	Tag         bool
	Status      string // running, success, failed or canceled
}

// Status is one commit status record. GitLab updates a pending or running
// record in place and starts a new record once the last one finished.
type Status struct {
	ID          int64
	SHA         string
	Ref         string
	Name        string
	State       string
	TargetURL   string
	Description string
}

type project struct {
	id          int64
	members     map[int64]int
	groups      []int64
	mrs         map[int64]*mrState
	commits     map[string][]int64 // sha -> MR iids
	envs        []*envState
	deployments []*deployment
	statuses    []*status
	trees       map[string]map[string]string // sha -> path -> content: repository.go
	gov         governance                   // freeze periods, MR approvals, tags, pipelines: governance.go
}

type mrState struct {
	MergeRequest
	id        int64
	createdAt time.Time
	notes     []*noteState
}

type noteState struct {
	Note
	awards []award
}

type award struct {
	id        int64
	name      string
	createdAt time.Time
}

type envState struct {
	Environment
	createdAt, updatedAt time.Time
}

type deployment struct {
	Deployment
	envID                int64
	createdAt, updatedAt time.Time
}

type status struct {
	Status
	createdAt, startedAt, finishedAt time.Time
}

// projectByID returns the project, creating it: any numeric id exists. Callers hold s.mu.
func (s *Server) projectByID(id int64) *project {
	p := s.projects[id]
	if p == nil {
		p = &project{id: id, members: map[int64]int{}, mrs: map[int64]*mrState{}, commits: map[string][]int64{}}
		s.projects[id] = p
	}
	return p
}

// SetMember makes userID a direct member of the project with a GitLab access
// level (10 guest ... 50 owner); 0 removes the membership.
func (s *Server) SetMember(projectID, userID int64, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	setLevel(s.projectByID(projectID).members, userID, level)
}

// SetGroupMember makes userID a member of a group with level; 0 removes it.
func (s *Server) SetGroupMember(groupID, userID int64, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups[groupID] == nil {
		s.groups[groupID] = map[int64]int{}
	}
	setLevel(s.groups[groupID], userID, level)
}

// SetProjectGroups sets the groups the project sits in (its parent and the
// parent's ancestors), whose members the project's members/all includes.
func (s *Server) SetProjectGroups(projectID int64, groupIDs ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projectByID(projectID).groups = slices.Clone(groupIDs)
}

func setLevel(m map[int64]int, userID int64, level int) {
	if level == 0 {
		delete(m, userID)
		return
	}
	m[userID] = level
}

// SetMergeRequest creates or replaces a merge request, keeping its notes.
func (s *Server) SetMergeRequest(mr MergeRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByID(mr.ProjectID)
	if mr.State == "" {
		mr.State = "opened"
	}
	if mr.Author == "" {
		mr.Author = "developer"
	}
	if mr.WebURL == "" {
		mr.WebURL = fmt.Sprintf("%s/group/project-%d/-/merge_requests/%d", s.srv.URL, mr.ProjectID, mr.IID)
	}
	if mr.UpdatedAt.IsZero() {
		mr.UpdatedAt = s.clock()
	}
	mr.Labels = slices.Clone(mr.Labels)
	if old := p.mrs[mr.IID]; old != nil {
		old.MergeRequest = mr
		return
	}
	p.mrs[mr.IID] = &mrState{MergeRequest: mr, id: s.nextID("mr"), createdAt: mr.UpdatedAt}
}

// DeleteMergeRequest deletes a merge request and its notes.
func (s *Server) DeleteMergeRequest(projectID, iid int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.projectByID(projectID).mrs, iid)
}

// SetCommitMergeRequests says which merge requests contain the commit. A
// commit never set is unknown, and GitLab answers 404 for it.
func (s *Server) SetCommitMergeRequests(projectID int64, sha string, iids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projectByID(projectID).commits[sha] = append([]int64{}, iids...)
}

// AddNote writes n on merge request iid as a person would, by n.Author
// (n.AuthorID), and returns its id: n.ID, or a new one when 0. Shipbot
// reads a command's author and body from the API, so a comment a test
// delivers as a Note Hook must exist here too.
func (s *Server) AddNote(projectID, iid int64, n Note) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.projectByID(projectID).mrs[iid]
	if mr == nil {
		panic(fmt.Sprintf("fakegitlab: AddNote on unknown merge request %d!%d", projectID, iid))
	}
	if n.ID == 0 {
		n.ID = s.nextID("note")
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock()
	}
	n.UpdatedAt, n.Emojis = n.CreatedAt, nil
	mr.notes = append(mr.notes, &noteState{Note: n})
	return n.ID
}

// Notes returns the merge request's notes, oldest first.
func (s *Server) Notes(projectID, iid int64) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr := s.projectByID(projectID).mrs[iid]
	if mr == nil {
		return nil
	}
	out := make([]Note, 0, len(mr.notes))
	for _, n := range mr.notes {
		note := n.Note
		note.Emojis = nil
		for _, a := range n.awards {
			note.Emojis = append(note.Emojis, a.name)
		}
		out = append(out, note)
	}
	return out
}

// Environments returns the project's environments in creation order.
func (s *Server) Environments(projectID int64) []Environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Environment
	for _, e := range s.projectByID(projectID).envs {
		out = append(out, e.Environment)
	}
	return out
}

// Deployments returns the project's deployments in creation order.
func (s *Server) Deployments(projectID int64) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.projectByID(projectID).deployments {
		out = append(out, d.Deployment)
	}
	return out
}

// Statuses returns every status record of the commit, oldest first, like
// GitLab's GET .../statuses?all=true.
func (s *Server) Statuses(projectID int64, sha string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range s.projectByID(projectID).statuses {
		if st.SHA == sha {
			out = append(out, st.Status)
		}
	}
	return out
}

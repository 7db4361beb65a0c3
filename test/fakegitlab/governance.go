package fakegitlab

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// FreezePeriod is a project's deploy freeze: cron start and end, read in
// CronTimezone, as GitLab's freeze_periods API keeps it.
type FreezePeriod struct {
	ID           int64
	FreezeStart  string
	FreezeEnd    string
	CronTimezone string // UTC when empty
}

// Pipeline is a CI pipeline the fake serves for a commit.
type Pipeline struct {
	ID     int64 // given one when 0
	SHA    string
	Ref    string
	Tag    bool
	Status string // success, failed, running, ...
	User   string // who ran it; "developer" when empty
	UserID int64
}

// governance is a project's freeze periods, merge request approvals, tags
// and pipelines.
type governance struct {
	freezes   []FreezePeriod
	approvals map[int64][]approval // MR iid -> approvals, in order
	tags      map[string]string    // tag -> commit sha
	pipelines []Pipeline
	createdAt time.Time
}

type approval struct {
	userID   int64
	username string
}

func (s *Server) governanceRoutes() {
	const p = apiPrefix + "/projects/{id}"
	s.mux.HandleFunc("GET "+p+"/freeze_periods", s.listFreezePeriods)
	s.mux.HandleFunc("GET "+p+"/merge_requests/{iid}/approvals", s.getApprovals)
	s.mux.HandleFunc("GET "+p+"/repository/tags/{tag}", s.getTag)
	s.mux.HandleFunc("GET "+p+"/repository/commits/{sha}", s.getCommit)
	s.mux.HandleFunc("GET "+p+"/pipelines", s.listPipelines)
}

// AddFreezePeriod adds a deploy freeze to the project and returns its id.
func (s *Server) AddFreezePeriod(projectID int64, f FreezePeriod) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.projectByID(projectID).gov
	if f.ID == 0 {
		f.ID = s.nextID("freeze")
	}
	if f.CronTimezone == "" {
		f.CronTimezone = "UTC"
	}
	if g.createdAt.IsZero() {
		g.createdAt = s.clock()
	}
	g.freezes = append(g.freezes, f)
	return f.ID
}

// Approve records userID's approval of merge request iid, as the Approve
// button does; approving twice is GitLab's 401, kept here as a no-op.
func (s *Server) Approve(projectID, iid, userID int64, username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.projectByID(projectID).gov
	if g.approvals == nil {
		g.approvals = map[int64][]approval{}
	}
	if !slices.ContainsFunc(g.approvals[iid], func(a approval) bool { return a.userID == userID }) {
		g.approvals[iid] = append(g.approvals[iid], approval{userID: userID, username: username})
	}
}

// SetTag makes tag point at the commit sha.
func (s *Server) SetTag(projectID int64, tag, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.projectByID(projectID).gov
	if g.tags == nil {
		g.tags = map[string]string{}
	}
	g.tags[tag] = sha
}

// AddPipeline adds a pipeline for a commit and returns its id.
func (s *Server) AddPipeline(projectID int64, pl Pipeline) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pl.ID == 0 {
		pl.ID = s.nextID("pipeline")
	}
	if pl.User == "" {
		pl.User, pl.UserID = "developer", 2
	}
	g := &s.projectByID(projectID).gov
	g.pipelines = append(g.pipelines, pl)
	return pl.ID
}

type freezeJSON struct {
	ID           int64     `json:"id"`
	FreezeStart  string    `json:"freeze_start"`
	FreezeEnd    string    `json:"freeze_end"`
	CronTimezone string    `json:"cron_timezone"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (s *Server) listFreezePeriods(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	out := []freezeJSON{}
	for _, f := range p.gov.freezes {
		out = append(out, freezeJSON{ID: f.ID, FreezeStart: f.FreezeStart, FreezeEnd: f.FreezeEnd, CronTimezone: f.CronTimezone,
			CreatedAt: p.gov.createdAt, UpdatedAt: p.gov.createdAt})
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

type approvedByJSON struct {
	User userJSON `json:"user"`
}

// approvalsJSON is GET .../merge_requests/:iid/approvals, trimmed.
type approvalsJSON struct {
	ID                int64            `json:"id"`
	IID               int64            `json:"iid"`
	ProjectID         int64            `json:"project_id"`
	Title             string           `json:"title"`
	State             string           `json:"state"`
	Approved          bool             `json:"approved"`
	ApprovalsRequired int              `json:"approvals_required"`
	ApprovalsLeft     int              `json:"approvals_left"`
	ApprovedBy        []approvedByJSON `json:"approved_by"`
	CreatedAt         time.Time        `json:"created_at"`
	UpdatedAt         time.Time        `json:"updated_at"`
}

func (s *Server) getApprovals(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, ok := s.mergeRequestLocked(w, r)
	if !ok {
		return
	}
	out := approvalsJSON{ID: mr.id, IID: mr.IID, ProjectID: p.id, Title: mr.Title, State: mr.State,
		ApprovedBy: []approvedByJSON{}, CreatedAt: mr.createdAt, UpdatedAt: mr.UpdatedAt}
	for _, a := range p.gov.approvals[mr.IID] {
		out.ApprovedBy = append(out.ApprovedBy, approvedByJSON{User: s.user(a.userID, a.username)})
	}
	out.Approved = len(out.ApprovedBy) > 0
	writeJSON(w, http.StatusOK, out)
}

// mergeRequestLocked resolves :id and :iid; callers hold s.mu.
func (s *Server) mergeRequestLocked(w http.ResponseWriter, r *http.Request) (*project, *mrState, bool) {
	p, ok := s.project(w, r)
	if !ok {
		return nil, nil, false
	}
	iid, ok := pathInt(w, r, "iid")
	if !ok {
		return nil, nil, false
	}
	mr := p.mrs[iid]
	if mr == nil {
		apiError(w, http.StatusNotFound, "404 Not found")
		return nil, nil, false
	}
	return p, mr, true
}

type commitJSON struct {
	ID            string    `json:"id"`
	ShortID       string    `json:"short_id"`
	Title         string    `json:"title"`
	Message       string    `json:"message"`
	AuthorName    string    `json:"author_name"`
	CreatedAt     time.Time `json:"created_at"`
	CommittedDate time.Time `json:"committed_date"`
	WebURL        string    `json:"web_url"`
}

func (s *Server) commitJSON(p *project, sha string) commitJSON {
	t := s.clock()
	return commitJSON{ID: sha, ShortID: sha[:min(8, len(sha))], Title: "commit " + sha[:min(8, len(sha))], Message: "commit",
		AuthorName: "developer", CreatedAt: t, CommittedDate: t, WebURL: fmt.Sprintf("%s/group/project-%d/-/commit/%s", s.srv.URL, p.id, sha)}
}

func (s *Server) getTag(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	tag := r.PathValue("tag")
	sha, ok := p.gov.tags[tag]
	if !ok {
		apiError(w, http.StatusNotFound, "404 Tag Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": tag, "message": "", "target": sha, "commit": s.commitJSON(p, sha), "protected": true})
}

// getCommit knows the commits of tags and pipelines; GitLab also takes a
// branch or tag name here, which shipbot does not use.
func (s *Server) getCommit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha")
	known := slices.ContainsFunc(p.gov.pipelines, func(pl Pipeline) bool { return pl.SHA == sha })
	for _, t := range p.gov.tags {
		known = known || t == sha
	}
	if !known {
		apiError(w, http.StatusNotFound, "404 Commit Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.commitJSON(p, sha))
}

type pipelineJSON struct {
	ID        int64     `json:"id"`
	IID       int64     `json:"iid"`
	ProjectID int64     `json:"project_id"`
	SHA       string    `json:"sha"`
	Ref       string    `json:"ref"`
	Status    string    `json:"status"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	WebURL    string    `json:"web_url"`
}

// listPipelines filters by sha, ref and status as GitLab does, newest first.
func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	out := []pipelineJSON{}
	for _, pl := range slices.Backward(p.gov.pipelines) {
		switch {
		case q.Has("sha") && pl.SHA != q.Get("sha"),
			q.Has("ref") && pl.Ref != q.Get("ref"),
			q.Has("status") && pl.Status != q.Get("status"):
			continue
		}
		t := s.clock()
		out = append(out, pipelineJSON{ID: pl.ID, IID: pl.ID, ProjectID: p.id, SHA: pl.SHA, Ref: pl.Ref, Status: pl.Status, Source: "push",
			CreatedAt: t, UpdatedAt: t, WebURL: fmt.Sprintf("%s/group/project-%d/-/pipelines/%d", s.srv.URL, p.id, pl.ID)})
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

package fakegitlab

import (
	"fmt"
	"time"
)

// The JSON bodies below follow GitLab's API entities (API::Entities::*),
// trimmed to the fields a client could plausibly read.

type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name"`
	State     string `json:"state"`
	AvatarURL string `json:"avatar_url"`
	WebURL    string `json:"web_url"`
}

func (s *Server) user(id int64, username string) userJSON {
	return userJSON{ID: id, Username: username, Name: username, State: "active",
		AvatarURL: s.srv.URL + "/uploads/avatar.png", WebURL: s.srv.URL + "/" + username}
}

func (s *Server) bot() userJSON { return s.user(BotUserID, BotUsername) }

type noteJSON struct {
	ID           int64     `json:"id"`
	Type         *string   `json:"type"`
	Body         string    `json:"body"`
	Author       userJSON  `json:"author"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	System       bool      `json:"system"`
	NoteableID   int64     `json:"noteable_id"`
	NoteableType string    `json:"noteable_type"`
	NoteableIID  int64     `json:"noteable_iid"`
	ProjectID    int64     `json:"project_id"`
	Resolvable   bool      `json:"resolvable"`
	Confidential bool      `json:"confidential"`
	Internal     bool      `json:"internal"`
}

func (s *Server) noteJSON(p *project, mr *mrState, n *noteState) noteJSON {
	author := n.AuthorID
	if author == 0 {
		author = BotUserID
	}
	return noteJSON{ID: n.ID, Body: n.Body, Author: s.user(author, n.Author),
		CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt, NoteableID: mr.id,
		NoteableType: "MergeRequest", NoteableIID: mr.IID, ProjectID: p.id}
}

type awardJSON struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	User          userJSON  `json:"user"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	AwardableID   int64     `json:"awardable_id"`
	AwardableType string    `json:"awardable_type"`
}

func (s *Server) awardJSON(n *noteState, a award) awardJSON {
	return awardJSON{ID: a.id, Name: a.name, User: s.bot(), CreatedAt: a.createdAt,
		UpdatedAt: a.createdAt, AwardableID: n.ID, AwardableType: "Note"}
}

type memberJSON struct {
	userJSON
	AccessLevel     int       `json:"access_level"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       *string   `json:"expires_at"`
	MembershipState string    `json:"membership_state"`
}

type referencesJSON struct {
	Short    string `json:"short"`
	Relative string `json:"relative"`
	Full     string `json:"full"`
}

type diffRefsJSON struct {
	BaseSHA  string `json:"base_sha"`
	HeadSHA  string `json:"head_sha"`
	StartSHA string `json:"start_sha"`
}

// mrJSON is API::Entities::MergeRequestBasic; DiffRefs is set only for the
// single-MR endpoint, as GitLab's MergeRequest entity adds it.
type mrJSON struct {
	ID                  int64          `json:"id"`
	IID                 int64          `json:"iid"`
	ProjectID           int64          `json:"project_id"`
	Title               string         `json:"title"`
	Description         string         `json:"description"`
	State               string         `json:"state"`
	CreatedAt           time.Time      `json:"created_at"`
	UpdatedAt           time.Time      `json:"updated_at"`
	TargetBranch        string         `json:"target_branch"`
	SourceBranch        string         `json:"source_branch"`
	SourceProjectID     int64          `json:"source_project_id"`
	TargetProjectID     int64          `json:"target_project_id"`
	Author              userJSON       `json:"author"`
	Labels              []string       `json:"labels"`
	Draft               bool           `json:"draft"`
	SHA                 string         `json:"sha"`
	MergeCommitSHA      *string        `json:"merge_commit_sha"`
	SquashCommitSHA     *string        `json:"squash_commit_sha"`
	DetailedMergeStatus string         `json:"detailed_merge_status"`
	WebURL              string         `json:"web_url"`
	References          referencesJSON `json:"references"`
	DiffRefs            *diffRefsJSON  `json:"diff_refs,omitempty"`
}

func (s *Server) mrJSON(mr *mrState, withDiffRefs bool) mrJSON {
	labels := mr.Labels
	if labels == nil {
		labels = []string{}
	}
	ref := fmt.Sprintf("!%d", mr.IID)
	j := mrJSON{ID: mr.id, IID: mr.IID, ProjectID: mr.ProjectID, Title: mr.Title,
		Description: mr.Description, State: mr.State, CreatedAt: mr.createdAt,
		UpdatedAt: mr.UpdatedAt, TargetBranch: mr.TargetBranch, SourceBranch: mr.SourceBranch,
		SourceProjectID: mr.ProjectID, TargetProjectID: mr.ProjectID,
		Author: s.user(2, mr.Author), Labels: labels, SHA: mr.HeadSHA,
		MergeCommitSHA: nullable(mr.MergeCommitSHA), SquashCommitSHA: nullable(mr.SquashCommitSHA),
		DetailedMergeStatus: "mergeable", WebURL: mr.WebURL,
		References: referencesJSON{Short: ref, Relative: ref,
			Full: fmt.Sprintf("group/project-%d%s", mr.ProjectID, ref)},
	}
	if mr.State != "opened" {
		j.DetailedMergeStatus = "not_open"
	}
	if withDiffRefs {
		j.DiffRefs = &diffRefsJSON{HeadSHA: mr.HeadSHA}
	}
	return j
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type envJSON struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Slug        string    `json:"slug"`
	ExternalURL *string   `json:"external_url"`
	State       string    `json:"state"`
	Tier        string    `json:"tier"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	AutoStopAt  *string   `json:"auto_stop_at"`
}

func envToJSON(e *envState) envJSON {
	return envJSON{ID: e.ID, Name: e.Name, Slug: e.Slug, ExternalURL: nullable(e.ExternalURL),
		State: e.State, Tier: "other", CreatedAt: e.createdAt, UpdatedAt: e.updatedAt}
}

type deploymentJSON struct {
	ID          int64     `json:"id"`
	IID         int64     `json:"iid"`
	Ref         string    `json:"ref"`
	SHA         string    `json:"sha"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	User        userJSON  `json:"user"`
	Environment envJSON   `json:"environment"`
	Deployable  *struct{} `json:"deployable"`
}

type statusJSON struct {
	ID           int64      `json:"id"`
	SHA          string     `json:"sha"`
	Ref          string     `json:"ref"`
	Status       string     `json:"status"`
	Name         string     `json:"name"`
	TargetURL    *string    `json:"target_url"`
	Description  *string    `json:"description"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	AllowFailure bool       `json:"allow_failure"`
	Coverage     *float64   `json:"coverage"`
	PipelineID   int64      `json:"pipeline_id"`
	Author       userJSON   `json:"author"`
}

func (s *Server) statusJSON(st *status) statusJSON {
	return statusJSON{ID: st.ID, SHA: st.SHA, Ref: st.Ref, Status: st.State, Name: st.Name,
		TargetURL: nullable(st.TargetURL), Description: nullable(st.Description),
		CreatedAt: st.createdAt, StartedAt: timePtr(st.startedAt), FinishedAt: timePtr(st.finishedAt),
		PipelineID: 1, Author: s.bot()}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Package gitlabevent turns GitLab webhook deliveries into shipbot's own event types.
// GitLab SDK types stop here: nothing past this package sees them.
package gitlabevent

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	// The v1 package of the experiment that becomes encoding/json/v2:
	// encoding/json's rules on the v2 engine, pure Go, at about half of
	// encoding/json's CPU here, where 45 % of the intake's CPU went at 64
	// senders (docs/BENCHMARKS.md). goccy/go-json was faster still, but
	// read past its buffer on some malformed bodies, and these arrive
	// before the sender's token is checked.
	json "github.com/go-json-experiment/json/v1"
	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// Kind names a GitLab event shipbot understands.
type Kind string

// The events shipbot acts on, named by their X-Gitlab-Event header.
const (
	KindPush         Kind = "Push Hook"
	KindTagPush      Kind = "Tag Push Hook"
	KindMergeRequest Kind = "Merge Request Hook"
	KindNote         Kind = "Note Hook"
	KindPipeline     Kind = "Pipeline Hook"
)

// ErrUnsupported means the event is not one shipbot acts on; it is acknowledged
// and ignored, because GitLab disables hooks that keep getting 4xx answers.
var ErrUnsupported = errors.New("unsupported event")

// ErrMalformed means the body is not a valid payload for its event header.
var ErrMalformed = errors.New("malformed payload")

// zeroSHA is what GitLab sends as "after" when a ref is deleted.
const zeroSHA = "0000000000000000000000000000000000000000"

// Event is one of *Push, *TagPush, *MergeRequest, *Note or *Pipeline.
type Event interface{ Kind() Kind }

// Project identifies a GitLab project.
type Project struct {
	ID     int64  `json:"id"`
	Path   string `json:"path"` // path_with_namespace, e.g. group/app
	WebURL string `json:"webUrl,omitempty"`
}

// User is the GitLab user behind an event.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
}

// Push is a push to a branch.
type Push struct {
	Project      Project
	Branch       string
	Before, SHA  string
	User         User
	Deleted      bool
	TotalCommits int64
}

// TagPush is a tag being pushed or deleted.
type TagPush struct {
	Project Project
	Tag     string
	SHA     string
	User    User
	Deleted bool
}

// MergeRequest is a merge request being opened, updated, merged or closed.
type MergeRequest struct {
	Project      Project
	IID          int64
	Title        string
	Action       string // open, reopen, update, close, merge, approved, ...
	State        string // opened, closed, merged, locked
	SourceBranch string
	TargetBranch string
	HeadSHA      string
	URL          string
	Labels       []string
	User         User
}

// Note is a comment.
type Note struct {
	Project      Project
	ID           int64
	Body         string
	Action       string // create or update
	System       bool
	NoteableType string // MergeRequest, Commit, Issue, Snippet
	MergeRequest *MergeRequestRef
	URL          string
	User         User
}

// MergeRequestRef is the part of a merge request a note or pipeline carries.
type MergeRequestRef struct {
	IID          int64
	SourceBranch string
	HeadSHA      string
	State        string
	URL          string
}

// Pipeline is a pipeline changing status.
type Pipeline struct {
	Project      Project
	ID           int64
	Ref          string
	Tag          bool
	SHA          string
	Status       string // pending, running, success, failed, canceled, ...
	Source       string // push, merge_request_event, web, ...
	User         User
	Jobs         []Job
	MergeRequest *MergeRequestRef
}

// Job is one job of a pipeline.
type Job struct {
	ID         int64
	Name       string
	Stage      string
	Status     string
	FinishedAt string
}

// Kind implements Event.
func (*Push) Kind() Kind { return KindPush }

// Kind implements Event.
func (*TagPush) Kind() Kind { return KindTagPush }

// Kind implements Event.
func (*MergeRequest) Kind() Kind { return KindMergeRequest }

// Kind implements Event.
func (*Note) Kind() Kind { return KindNote }

// Kind implements Event.
func (*Pipeline) Kind() Kind { return KindPipeline }

// Supported reports whether shipbot decodes events with this header.
func Supported(header string) bool {
	switch Kind(header) {
	case KindPush, KindTagPush, KindMergeRequest, KindNote, KindPipeline:
		return true
	}
	return false
}

// Decode parses a delivery by its X-Gitlab-Event header. It returns
// ErrUnsupported for events shipbot does not act on, and ErrMalformed (with
// the parser's reason) for bodies that do not fit their header.
func Decode(header string, body []byte) (Event, error) {
	return ReadHead(body).Decode(header)
}

// Head is what a body says of itself, read without decoding it whole:
// its object_kind, and the project it names (every hook shipbot acts on
// carries project.id and project.path_with_namespace). Intake reads it to
// pick the project's secret before it decodes the rest.
type Head struct {
	ObjectKind string `json:"object_kind"`
	Project    struct {
		ID   int64  `json:"id"`
		Path string `json:"path_with_namespace"`
	} `json:"project"`
	body []byte
	err  error // why the body does not parse, if it does not
}

// ReadHead reads a body's Head. A body that names no project has the zero
// project; one that does not parse has what was read before the error,
// and its Decode refuses it, so nothing ever acts on that project.
func ReadHead(body []byte) Head {
	h := Head{body: body}
	h.err = json.Unmarshal(body, &h)
	return h
}

// Decode is the package's Decode of the body h was read from, which it
// does not read again for the object_kind.
func (h Head) Decode(header string) (Event, error) {
	if !Supported(header) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, header)
	}
	if h.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, header, h.err)
	}
	// GitLab never sends a body whose object_kind is not the one its
	// header names, and the client's parser goes by the header alone.
	if want := objectKinds[Kind(header)]; h.ObjectKind != want {
		return nil, fmt.Errorf("%w: %s: object_kind is %q, want %q", ErrMalformed, header, h.ObjectKind, want)
	}
	raw, err := h.client(Kind(header))
	if err != nil {
		return nil, err
	}
	e, err := fromClient(header, raw)
	if err != nil {
		return nil, err
	}
	// The sender's token was checked for the head's project, so the event
	// acts as that one: should the head and the full decode, each with its
	// own struct, ever read an odd body differently, it is refused.
	if p := ProjectOf(e); p.ID != h.Project.ID || p.Path != h.Project.Path {
		return nil, fmt.Errorf("%w: %s: %w: %d %q in its head and %d %q in the whole", ErrMalformed, header, errTwoProjects, h.Project.ID, h.Project.Path, p.ID, p.Path)
	}
	return e, nil
}

// fromClient turns the client's event into shipbot's.
func fromClient(header string, raw any) (Event, error) {
	switch e := raw.(type) {
	case *gitlab.PushEvent:
		return checkSHA(fromPush(e), header, "after", e.After)
	case *gitlab.TagEvent:
		t := fromTag(e)
		return checkSHA(t, header, "checkout_sha", t.SHA)
	case *gitlab.MergeEvent:
		return fromMerge(e), nil
	case *gitlab.MergeCommentEvent:
		return fromMergeComment(e), nil
	case *gitlab.CommitCommentEvent:
		return fromCommitComment(e), nil
	case *gitlab.PipelineEvent:
		return checkSHA(fromPipeline(e), header, "object_attributes.sha", e.ObjectAttributes.SHA)
	}
	return nil, fmt.Errorf("%w: %s decoded as %T", ErrUnsupported, header, raw)
}

// errTwoProjects is a body whose head and whole name different projects.
var errTwoProjects = errors.New("the body names two projects")

// client decodes the body as the client's type for k, as
// gitlab.ParseWebhook picks it, in one pass (two for a comment, whose
// noteable_type is read first, as the client does). Unlike the client, it
// answers a comment on anything but a merge request or a commit with
// ErrUnsupported, without decoding it.
func (h Head) client(k Kind) (any, error) {
	var e any
	switch k {
	case KindPush:
		e = &gitlab.PushEvent{}
	case KindTagPush:
		e = &gitlab.TagEvent{}
	case KindMergeRequest:
		e = &gitlab.MergeEvent{}
	case KindPipeline:
		e = &gitlab.PipelineEvent{}
	case KindNote:
		var on struct {
			Attributes struct {
				NoteableType string `json:"noteable_type"`
			} `json:"object_attributes"`
		}
		if err := json.Unmarshal(h.body, &on); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, k, err)
		}
		switch t := on.Attributes.NoteableType; t {
		case "MergeRequest":
			e = &gitlab.MergeCommentEvent{}
		case "Commit":
			e = &gitlab.CommitCommentEvent{}
		case "":
			return nil, fmt.Errorf("%w: %s: object_attributes.noteable_type is missing", ErrMalformed, k)
		default:
			// Comments on issues, snippets, designs, wiki pages... carry no
			// deploy commands. The client's parser refuses the kinds it does
			// not know, but answering those with a 4xx would count towards
			// GitLab disabling the hook.
			return nil, fmt.Errorf("%w: %s on a %s", ErrUnsupported, k, t)
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, k)
	}
	if err := json.Unmarshal(h.body, e); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, k, err)
	}
	return e, nil
}

// ProjectOf is the project e names; the zero Project for an Event of
// another package.
func ProjectOf(e Event) Project {
	switch e := e.(type) {
	case *Push:
		return e.Project
	case *TagPush:
		return e.Project
	case *MergeRequest:
		return e.Project
	case *Note:
		return e.Project
	case *Pipeline:
		return e.Project
	}
	return Project{}
}

// objectKinds is the object_kind each supported header's body carries.
var objectKinds = map[Kind]string{
	KindPush: "push", KindTagPush: "tag_push", KindMergeRequest: "merge_request",
	KindNote: "note", KindPipeline: "pipeline",
}

// shaPattern is a full commit id: 40 hex digits, or 64 in a repository
// that uses SHA-256.
var shaPattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// checkSHA refuses an event whose commit id is not a full one: shipbot
// names images, releases and statuses by it, and an empty or short one
// would deploy an image nobody built.
func checkSHA[E Event](e E, header, field, sha string) (Event, error) {
	if !shaPattern.MatchString(sha) {
		return nil, fmt.Errorf("%w: %s: %s %q is not a full commit id (40 hex digits)", ErrMalformed, header, field, sha)
	}
	return e, nil
}

func fromPush(e *gitlab.PushEvent) *Push {
	return &Push{
		Project:      Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		Branch:       strings.TrimPrefix(e.Ref, "refs/heads/"),
		Before:       e.Before,
		SHA:          e.After,
		User:         User{ID: e.UserID, Username: e.UserUsername, Name: e.UserName},
		Deleted:      e.After == zeroSHA,
		TotalCommits: e.TotalCommitsCount,
	}
}

func fromTag(e *gitlab.TagEvent) *TagPush {
	sha := e.CheckoutSHA
	if sha == "" {
		sha = e.After
	}
	return &TagPush{
		Project: Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		Tag:     strings.TrimPrefix(e.Ref, "refs/tags/"),
		SHA:     sha,
		User:    User{ID: e.UserID, Username: e.UserUsername, Name: e.UserName},
		Deleted: e.After == zeroSHA,
	}
}

func fromMerge(e *gitlab.MergeEvent) *MergeRequest {
	a := e.ObjectAttributes
	labels := make([]string, 0, len(e.Labels))
	for _, l := range e.Labels {
		if l != nil {
			labels = append(labels, l.Title)
		}
	}
	return &MergeRequest{
		Project:      Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		IID:          a.IID,
		Title:        a.Title,
		Action:       a.Action,
		State:        a.State,
		SourceBranch: a.SourceBranch,
		TargetBranch: a.TargetBranch,
		HeadSHA:      a.LastCommit.ID,
		URL:          a.URL,
		Labels:       labels,
		User:         user(e.User),
	}
}

func fromMergeComment(e *gitlab.MergeCommentEvent) *Note {
	a, mr := e.ObjectAttributes, e.MergeRequest
	return &Note{
		Project:      Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		ID:           a.ID,
		Body:         a.Note,
		Action:       string(a.Action),
		System:       a.System,
		NoteableType: a.NoteableType,
		MergeRequest: &MergeRequestRef{IID: mr.IID, SourceBranch: mr.SourceBranch, HeadSHA: mr.LastCommit.ID, State: mr.State, URL: mr.URL},
		URL:          a.URL,
		User:         user(e.User),
	}
}

func fromCommitComment(e *gitlab.CommitCommentEvent) *Note {
	a := e.ObjectAttributes
	return &Note{
		Project:      Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		ID:           a.ID,
		Body:         a.Note,
		Action:       string(a.Action),
		System:       a.System,
		NoteableType: a.NoteableType,
		URL:          a.URL,
		User:         commentUser(e.User),
	}
}

func fromPipeline(e *gitlab.PipelineEvent) *Pipeline {
	a := e.ObjectAttributes
	p := &Pipeline{
		Project: Project{ID: e.Project.ID, Path: e.Project.PathWithNamespace, WebURL: e.Project.WebURL},
		ID:      a.ID,
		Ref:     a.Ref,
		Tag:     a.Tag,
		SHA:     a.SHA,
		Status:  a.Status,
		Source:  a.Source,
		User:    user(e.User),
	}
	for _, b := range e.Builds {
		p.Jobs = append(p.Jobs, Job{ID: b.ID, Name: b.Name, Stage: b.Stage, Status: b.Status, FinishedAt: b.FinishedAt})
	}
	if mr := e.MergeRequest; mr.IID != 0 {
		p.MergeRequest = &MergeRequestRef{IID: mr.IID, SourceBranch: mr.SourceBranch, State: mr.State, URL: mr.URL, HeadSHA: a.SHA}
	}
	return p
}

func user(u *gitlab.EventUser) User {
	if u == nil {
		return User{}
	}
	return User{ID: u.ID, Username: u.Username, Name: u.Name}
}

func commentUser(u *gitlab.User) User {
	if u == nil {
		return User{}
	}
	return User{ID: u.ID, Username: u.Username, Name: u.Name}
}

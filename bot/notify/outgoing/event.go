package outgoing

import (
	"time"

	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Schema names the version of the event document. Fields are only ever
// added within a version; a removal or change of meaning makes v2.
const Schema = "shipbot.event/v1"

// Event types.
const (
	TypeRelease = "release"
	TypeDeploy  = "deploy"
	TypePreview = "preview"
)

// Event is the JSON document shipbot posts; docs/EVENTS.md describes each field.
type Event struct {
	Schema      string        `json:"schema"`
	Type        string        `json:"type"`
	Reason      string        `json:"reason"`
	ID          string        `json:"id"`
	App         string        `json:"app,omitempty"`
	Project     string        `json:"project,omitempty"`
	Environment string        `json:"environment,omitempty"`
	Cluster     string        `json:"cluster,omitempty"`
	Namespace   string        `json:"namespace,omitempty"`
	From        string        `json:"from,omitempty"`
	To          string        `json:"to,omitempty"`
	Stage       *int          `json:"stage,omitempty"`  // 1-based; releases only
	Stages      *int          `json:"stages,omitempty"` // releases only
	Percent     *int          `json:"percent,omitempty"`
	Phase       string        `json:"phase,omitempty"`
	Summary     string        `json:"summary,omitempty"`
	Message     string        `json:"message,omitempty"`
	Actor       string        `json:"actor,omitempty"`
	TriggeredBy string        `json:"triggeredBy,omitempty"`
	Image       string        `json:"image,omitempty"`
	SHA         string        `json:"sha,omitempty"`
	Ref         string        `json:"ref,omitempty"`
	PipelineID  int64         `json:"pipelineId,omitempty"`
	Deployment  string        `json:"deployment,omitempty"`
	URL         string        `json:"url,omitempty"`
	WebURL      string        `json:"webUrl,omitempty"`
	MR          *MergeRequest `json:"mergeRequest,omitempty"`
	At          time.Time     `json:"at"`
}

// MergeRequest is the merge request a preview belongs to.
type MergeRequest struct {
	ProjectID    int64  `json:"projectId"`
	IID          int64  `json:"iid"`
	Title        string `json:"title,omitempty"`
	SourceBranch string `json:"sourceBranch,omitempty"`
	HeadSHA      string `json:"headSha,omitempty"`
}

// Name is the event's X-Shipbot-Event value, e.g. "release.Paused".
func (e Event) Name() string { return e.Type + "." + e.Reason }

// FromRelease describes a release event.
func FromRelease(e release.Event) Event {
	r := e.Release
	n := len(r.Stages)
	stage, percent := min(r.Stage+1, n), r.Percent
	return Event{
		Schema: Schema, Type: TypeRelease, Reason: string(e.Reason), ID: r.ID,
		App: r.App, Project: r.Project, Environment: r.Environment, Cluster: r.Cluster, Namespace: r.Namespace,
		From: r.From.Name, To: r.To.Name, Stage: &stage, Stages: &n, Percent: &percent, Phase: string(r.Phase),
		Summary: e.Summary, Message: e.Message, Actor: releaseActor(e), TriggeredBy: r.TriggeredBy,
		Image: r.To.Image, SHA: r.To.SHA, Ref: r.To.Ref, PipelineID: r.PipelineID, WebURL: r.WebURL,
		At: e.At.UTC(),
	}
}

// releaseActor is the person whose action the event directly follows: the
// author of the history entry just before the event's own, or, for a
// refused intent, that intent's author. Empty when the engine acted alone.
func releaseActor(e release.Event) string {
	r := e.Release
	if e.Reason == release.ReasonIntentRejected {
		for i := len(r.Intents) - 1; i >= 0; i-- {
			if in := r.Intents[i]; !in.Done.IsZero() && in.Outcome != release.OutcomeApplied {
				return in.Actor
			}
		}
	}
	// The engine appends the event's own entry, by shipbot, before notifying.
	if n := len(r.History); n >= 2 {
		if a := r.History[n-2].Actor; a != release.EngineActor {
			return a
		}
	}
	return ""
}

// FromDeployer describes a deploy or preview event; at is when it was seen.
func FromDeployer(e deployer.Event, at time.Time) Event {
	d := e.Deployment
	out := Event{
		Schema: Schema, Type: TypeDeploy, Reason: string(e.Reason), ID: d.ID,
		App: d.App, Project: d.Project, Environment: d.Environment, Cluster: d.Cluster, Namespace: d.Namespace,
		To: d.Image, Phase: string(d.Status), Message: e.Message, Actor: d.User, TriggeredBy: d.User,
		Image: d.Image, SHA: d.SHA, Ref: d.Ref, PipelineID: d.PipelineID, At: at.UTC(),
	}
	if e.Preview != nil {
		preview(&out, *e.Preview)
	}
	return out
}

// preview makes a deploy event a preview event, keyed by the merge request.
func preview(out *Event, p store.Preview) {
	out.Type, out.Deployment, out.ID = TypePreview, out.ID, p.Key
	out.Phase, out.URL, out.WebURL = string(p.Status), p.URL, p.WebURL
	out.MR = &MergeRequest{ProjectID: p.ProjectID, IID: p.IID, Title: p.Title, SourceBranch: p.SourceBranch, HeadSHA: p.HeadSHA}
	if out.Project == "" {
		out.Project = p.Project
	}
	if out.Cluster == "" {
		out.Cluster, out.Namespace = p.Cluster, p.Namespace
	}
	if p.User != "" {
		out.Actor = p.User
	}
	if out.SHA == "" {
		out.SHA = p.DeployedSHA
	}
	if out.Message == "" {
		out.Message = orText(p.Reason, p.StopReason)
	}
}

func orText(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

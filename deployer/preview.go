package deployer

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store"
)

// Labels on preview namespaces; the sweeper finds previews by them, so they
// survive a lost store.
const (
	LabelPreview   = "shipbot.io/preview"
	LabelProjectID = "shipbot.io/project-id"
	LabelProject   = "shipbot.io/project"
	LabelMR        = "shipbot.io/mr-iid"
	LabelBranch    = "shipbot.io/source-branch"
	LabelHeadSHA   = "shipbot.io/head-sha"
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// Why a preview was removed; the values of the removal metric's label.
const (
	StopMerged  = "merged"
	StopClosed  = "closed"
	StopDeleted = "deleted"
	StopTTL     = "ttl"
	StopCommand = "command"
	StopOrphan  = "orphan"
)

// MergeRequest is what shipbot knows of a merge request, from a webhook or
// from the GitLab API.
type MergeRequest struct {
	ProjectID    int64
	Project      string
	IID          int64
	Title        string
	State        string // opened, closed, merged, locked
	SourceBranch string
	HeadSHA      string
	WebURL       string
	Labels       []string
	User         string
}

var notLabelChar = regexp.MustCompile(`[^a-z0-9-]+`)

// PreviewNamespace names a merge request's namespace: prefix, project
// slug, project id and iid, as a DNS-1123 label of at most 63 characters,
// e.g. preview-shop-web-p42-mr-12. The slug is for people; the project id
// makes the name unique, since slugs collide (shop/my-app, shop/my_app and
// shop-my/app share one). A slug that does not fit is cut.
func PreviewNamespace(prefix, project string, projectID, iid int64) string {
	slug := strings.Trim(notLabelChar.ReplaceAllString(strings.ToLower(project), "-"), "-")
	suffix := "-p" + strconv.FormatInt(projectID, 10) + "-mr-" + strconv.FormatInt(iid, 10)
	if room := 63 - len(prefix) - len(suffix); len(slug) > room {
		slug = strings.TrimRight(slug[:max(0, room)], "-")
	}
	return strings.Trim(prefix+slug, "-") + suffix
}

// previewOwner are the labels a preview's namespace must carry for shipbot
// to change or delete it as that preview's.
func previewOwner(rec store.Preview) map[string]string {
	return map[string]string{LabelPreview: "true", LabelProjectID: strconv.FormatInt(rec.ProjectID, 10), LabelManagedBy: "shipbot"}
}

// PreviewHost is an app's host in a merge request's preview.
func PreviewHost(app string, iid int64, domain string) string {
	return fmt.Sprintf("mr-%d-%s.%s", iid, app, domain)
}

// labelValue makes s a valid label value: at most 63 characters of
// [a-z0-9-], starting and ending with a letter or digit.
func labelValue(s string) string {
	v := strings.Trim(notLabelChar.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(v) > 63 {
		v = strings.Trim(v[:63], "-")
	}
	return v
}

// Previewer decides what merge request events do to previews. It changes
// records inside the caller's transaction and does no I/O of its own.
type Previewer struct {
	Config *config.Config
}

// Enabled reports whether some environment takes merge requests.
func (p Previewer) Enabled() bool {
	_, ok := p.Config.PreviewEnvironment()
	return ok
}

// ObserveMR records a merge request event: a new head, a new title, a close
// or merge (the preview goes), a reopen (it comes back at the last head).
func (p Previewer) ObserveMR(tx *store.Tx, mr MergeRequest, action string, now time.Time) error {
	if !p.Enabled() || !p.hasApps(mr.Project) {
		return nil
	}
	rec, err := p.record(tx, mr, now)
	if err != nil {
		return err
	}
	switch mr.State {
	case "closed", "merged":
		stop(&rec, mr.State)
	case "opened":
		if action == "reopen" && !rec.Wanted && rec.HeadSHA != "" {
			rec.Wanted, rec.StopReason = true, ""
			return p.queue(tx, rec, deploySource{SHA: rec.HeadSHA, User: mr.User}, now)
		}
	}
	rec.Updated = now
	return tx.PutPreview(rec)
}

// Build queues a preview deploy of a successful pipeline for the merge
// request's head commit. A pipeline for an older commit deploys nothing.
func (p Previewer) Build(tx *store.Tx, mr MergeRequest, b Build, now time.Time) error {
	if !p.Enabled() || !p.hasApps(mr.Project) {
		return nil
	}
	rec, err := p.record(tx, mr, now)
	if err != nil {
		return err
	}
	if rec.MRState != "opened" || (rec.HeadSHA != "" && rec.HeadSHA != b.SHA) {
		return tx.PutPreview(rec)
	}
	rec.HeadSHA, rec.Wanted, rec.StopReason = b.SHA, true, ""
	return p.queue(tx, rec, deploySource{SHA: b.SHA, PipelineID: b.PipelineID, JobID: 0, Jobs: b.Jobs, User: b.User}, now)
}

// Redeploy queues a deploy of the merge request's head, for `/preview`.
func (p Previewer) Redeploy(tx *store.Tx, key, user string, now time.Time) error {
	rec, ok, err := tx.Preview(key)
	if err != nil {
		return err
	}
	if !ok || rec.HeadSHA == "" {
		return fmt.Errorf("no build of this merge request yet: wait for its pipeline: %w", ErrInvalid)
	}
	if rec.MRState != "opened" {
		return fmt.Errorf("the merge request is %s: %w", rec.MRState, ErrInvalid)
	}
	rec.Wanted, rec.StopReason = true, ""
	return p.queue(tx, rec, deploySource{SHA: rec.HeadSHA, User: user}, now)
}

// Stop marks a preview for removal now, for `/preview stop`.
func (p Previewer) Stop(tx *store.Tx, key, reason string, now time.Time) error {
	rec, ok, err := tx.Preview(key)
	if err != nil || !ok {
		return err
	}
	stop(&rec, reason)
	rec.Updated = now
	return tx.PutPreview(rec)
}

func stop(rec *store.Preview, reason string) {
	if rec.Wanted || rec.Status != store.PreviewStopped {
		rec.Wanted, rec.StopReason = false, reason
	}
	if reason == StopMerged || reason == StopClosed || reason == StopDeleted {
		rec.MRState = reason
	}
}

// record reads or starts a merge request's preview record and refreshes what
// GitLab said of the merge request.
func (p Previewer) record(tx *store.Tx, mr MergeRequest, now time.Time) (store.Preview, error) {
	key := store.PreviewKey(mr.ProjectID, mr.IID)
	rec, ok, err := tx.Preview(key)
	if err != nil {
		return rec, err
	}
	if !ok {
		cluster, _ := p.Config.PreviewCluster()
		rec = store.Preview{Key: key, ProjectID: mr.ProjectID, IID: mr.IID, Cluster: cluster, Status: store.PreviewWaiting,
			Namespace: PreviewNamespace(p.Config.Previews.NamespacePrefix, mr.Project, mr.ProjectID, mr.IID), LastActivity: now, Wanted: true}
	}
	rec.Project = or(mr.Project, rec.Project)
	rec.Title, rec.SourceBranch, rec.WebURL = or(mr.Title, rec.Title), or(mr.SourceBranch, rec.SourceBranch), or(mr.WebURL, rec.WebURL)
	if mr.Labels != nil {
		rec.Labels = mr.Labels
	}
	if mr.State != "" {
		rec.MRState = mr.State
	}
	if mr.HeadSHA != "" && mr.HeadSHA != rec.HeadSHA {
		rec.HeadSHA, rec.LastActivity = mr.HeadSHA, now
	}
	return rec, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// hasApps reports whether the project may have previews: an app of
// shipbot.yaml lists the preview environment, or the project's own
// .shipbot.yaml may list it (whether it does depends on the commit, and an
// MR event, which closes previews, carries none to read).
func (p Previewer) hasApps(project string) bool {
	env, _ := p.Config.PreviewEnvironment()
	if pol, ok := p.Config.Project(project); ok && slices.Contains(pol.Environments, env.Name) {
		return true
	}
	return slices.ContainsFunc(p.Config.Apps, func(a config.App) bool {
		_, ok := a.Environments[env.Name]
		return a.Project == project && ok
	})
}

type deploySource struct {
	SHA        string
	PipelineID int64
	JobID      int64
	Jobs       []Job
	User       string
}

// queue records one deployment per app of the project into the preview's namespace.
func (p Previewer) queue(tx *store.Tx, rec store.Preview, src deploySource, now time.Time) error {
	env, _ := p.Config.PreviewEnvironment()
	rec.Updated, rec.User = now, or(src.User, rec.User)
	if rec.Status == store.PreviewStopped || rec.Status == store.PreviewStopping {
		if err := rec.Transition(store.PreviewWaiting); err != nil {
			return err
		}
	}
	for _, app := range p.Config.Apps {
		if _, ok := app.Environments[env.Name]; !ok || app.Project != rec.Project {
			continue
		}
		image, err := app.ImageFor(config.ImageData{Project: rec.Project, App: app.Name, SHA: src.SHA, ShortSHA: short(src.SHA), Ref: rec.SourceBranch, Environment: env.Name})
		if err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
		_, err = tx.AddDeployment(store.Deployment{
			App: app.Name, Project: rec.Project, ProjectID: rec.ProjectID, Environment: env.Name, Cluster: rec.Cluster,
			Namespace: rec.Namespace, Ref: rec.SourceBranch, SHA: src.SHA, Image: image, PipelineID: src.PipelineID,
			JobID: max(src.JobID, buildJob(src.Jobs, app.Job)), User: rec.User, Trigger: "merge_request",
			Status: store.StatusPending, Created: now, Preview: rec.Key,
		})
		if err != nil {
			return err
		}
	}
	return tx.PutPreview(rec)
}

// previewLabels are the labels of a preview's namespace.
func previewLabels(rec store.Preview) map[string]string {
	return map[string]string{
		LabelPreview:   "true",
		LabelProjectID: strconv.FormatInt(rec.ProjectID, 10),
		LabelProject:   labelValue(rec.Project),
		LabelMR:        strconv.FormatInt(rec.IID, 10),
		LabelBranch:    labelValue(rec.SourceBranch),
		LabelHeadSHA:   labelValue(rec.HeadSHA),
		LabelManagedBy: "shipbot",
	}
}

// BuildBranch queues preview deploys for a successful branch pipeline: every
// open merge request whose source branch and head it is gets the build.
// Projects that run no merge request pipelines get previews this way.
func (p Previewer) BuildBranch(tx *store.Tx, b Build, now time.Time) error {
	if !p.Enabled() || b.Tag {
		return nil
	}
	recs, err := tx.Previews(func(r store.Preview) bool {
		return r.ProjectID == b.ProjectID && r.SourceBranch == b.Ref && r.MRState == "opened" && r.HeadSHA == b.SHA
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		mr := MergeRequest{ProjectID: r.ProjectID, Project: r.Project, IID: r.IID, State: r.MRState}
		if err := p.Build(tx, mr, b, now); err != nil {
			return err
		}
	}
	return nil
}

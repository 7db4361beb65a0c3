package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Input is what the overview is derived from: everything in the store.
type Input struct {
	Deployments []store.Deployment // any order
	Previews    []store.Preview
	Releases    []release.Release // any order
	// Environments orders the matrix's columns, as in shipbot.yaml;
	// environments that only the records name follow, sorted.
	Environments []string
	Locks        []release.Lock // any order
}

// Overview is the dashboard's front page.
type Overview struct {
	Environments []string
	// Locks says, by environment, who holds it and why, e.g.
	// `prod2 is locked by mia: "db migration"`.
	Locks    map[string]string
	Rows     []Row
	InFlight []Progress
	Previews []PreviewRow
}

// Row is one app of one project, with a cell per environment.
type Row struct {
	Project, App string
	Cells        []Cell // one per Overview.Environments
}

// Cell is what one app runs in one environment, and how it got there.
type Cell struct {
	Environment string
	Empty       bool   // nothing was ever deployed or released here
	Version     string // the revision's name, or the deployed ref
	Image       string
	Ref         string
	SHA         string // short
	Status      string // a deployment status, or "released"
	Class       string // ok, bad, busy or idle: the cell's colour
	By          string
	Ago         string
	Reason      string // why the deployment failed, in the cluster's words
	Source      string // the deployment or release id the cell shows
	ReleaseID   string // set when Source is a release, for the link
	// Note tells of a newer release that did not succeed, e.g.
	// "v1-1-0 rolled back".
	Note      string
	NoteID    string
	Releasing *Progress // a release in flight to this cell
}

// Progress is where an in-flight release stands.
type Progress struct {
	ID, App, Project, Environment, Cluster string
	From, To                               string
	Phase                                  release.Phase
	Class                                  string
	Stage, Stages                          int // 1-based stage being worked on, of how many
	Percent, Target                        int // share on To now, and the stage's target
	InStage                                string
	Summary                                string
	By                                     string
}

// PreviewRow is one merge request's preview environment.
type PreviewRow struct {
	Project, Title, WebURL, Branch, SHA string
	IID                                 int64
	Status                              store.PreviewStatus
	Class                               string
	URL                                 string
	Age                                 string
	By                                  string
	Reason                              string
}

// Build derives the overview from the records at now. It does no I/O.
func Build(in Input, now time.Time) Overview {
	cells := map[[2]string]*Cell{} // app, environment
	rows := map[string]*Row{}      // app
	envSeen := map[string]bool{}
	cell := func(project, app, env string) *Cell {
		if rows[app] == nil {
			rows[app] = &Row{Project: project, App: app}
		}
		envSeen[env] = true
		k := [2]string{app, env}
		if cells[k] == nil {
			cells[k] = &Cell{Environment: env, Empty: true}
		}
		return cells[k]
	}
	var o Overview
	deployed := latestDeployments(in.Deployments)
	for _, d := range deployed {
		fromDeployment(cell(d.Project, d.App, d.Environment), d, now)
	}
	rs := slices.Clone(in.Releases)
	slices.SortFunc(rs, func(a, b release.Release) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range rs {
		c := cell(r.Project, r.App, r.Environment)
		switch {
		case !r.Phase.Terminal():
			o.InFlight = append(o.InFlight, progress(r, now))
		case r.Phase == release.Succeeded:
			if d, ok := deployed[[2]string{r.App, r.Environment}]; !ok || !d.Created.After(r.Updated) {
				fromRelease(c, r, now)
			}
			c.Note, c.NoteID = "", ""
		default:
			c.Note, c.NoteID = r.To.Name+" "+strings.ToLower(phaseWords(r.Phase)), r.ID
		}
	}
	slices.Reverse(o.InFlight) // newest first
	// Of releases queued for one app and environment the oldest runs first:
	// that is the one its cell shows.
	for i := len(o.InFlight) - 1; i >= 0; i-- {
		p := &o.InFlight[i]
		if c := cells[[2]string{p.App, p.Environment}]; c.Releasing == nil {
			c.Releasing = p
		}
	}
	o.Locks = map[string]string{}
	for _, l := range in.Locks {
		o.Locks[l.Environment] = l.String()
	}
	o.Environments = columns(in.Environments, envSeen)
	for _, r := range rows {
		for _, env := range o.Environments {
			c := cells[[2]string{r.App, env}]
			if c == nil {
				c = &Cell{Environment: env, Empty: true}
			}
			r.Cells = append(r.Cells, *c)
		}
		o.Rows = append(o.Rows, *r)
	}
	slices.SortFunc(o.Rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Project, b.Project), strings.Compare(a.App, b.App))
	})
	o.Previews = previewRows(in.Previews, in.Deployments, now)
	return o
}

// latestDeployments keeps each app's newest deployment per environment,
// leaving out previews and deployments superseded before they ran.
func latestDeployments(ds []store.Deployment) map[[2]string]store.Deployment {
	out := map[[2]string]store.Deployment{}
	for _, d := range ds {
		if d.Preview != "" || d.Status == store.StatusSuperseded {
			continue
		}
		k := [2]string{d.App, d.Environment}
		if cur, ok := out[k]; !ok || d.ID > cur.ID {
			out[k] = d
		}
	}
	return out
}

func fromDeployment(c *Cell, d store.Deployment, now time.Time) {
	*c = Cell{
		Environment: c.Environment, Version: d.Ref, Image: d.Image, Ref: d.Ref, SHA: short(d.SHA),
		Status: string(d.Status), Class: deploymentClass(d.Status), By: d.User,
		Ago: Ago(now.Sub(cmp.Or(d.Finished, d.Created))), Reason: d.Reason, Source: d.ID,
	}
}

func fromRelease(c *Cell, r release.Release, now time.Time) {
	*c = Cell{
		Environment: c.Environment, Version: r.To.Name, Image: r.To.Image, Ref: r.To.Ref, SHA: short(r.To.SHA),
		Status: "released", Class: "ok", By: r.TriggeredBy, Ago: Ago(now.Sub(r.Updated)),
		Source: r.ID, ReleaseID: r.ID,
	}
}

func deploymentClass(s store.Status) string {
	switch s {
	case store.StatusSucceeded:
		return "ok"
	case store.StatusFailed:
		return "bad"
	case store.StatusPending, store.StatusRunning:
		return "busy"
	}
	return "idle"
}

// progress derives where a release in flight stands.
func progress(r release.Release, now time.Time) Progress {
	n := len(r.Stages)
	return Progress{
		ID: r.ID, App: r.App, Project: r.Project, Environment: r.Environment, Cluster: r.Cluster,
		From: cmp.Or(r.From.Name, "-"), To: r.To.Name, Phase: r.Phase, Class: phaseClass(r.Phase),
		Stage: min(r.Stage+1, n), Stages: n, Percent: r.Percent, Target: r.Target(),
		InStage: Ago(now.Sub(StageSince(r))), Summary: release.Describe(r, now), By: r.TriggeredBy,
	}
}

// StageSince is when the release reached its current stage: the first
// history entry of the last run of entries at that stage, or its creation.
func StageSince(r release.Release) time.Time {
	since := r.Created
	for i, e := range r.History {
		if e.Stage == r.Stage && (i == 0 || r.History[i-1].Stage != r.Stage) {
			since = e.At
		}
	}
	return since
}

func phaseClass(p release.Phase) string {
	switch p {
	case release.Paused:
		return "wait"
	case release.RollingBack, release.Failed, release.RolledBack, release.Aborted:
		return "bad"
	case release.Succeeded:
		return "ok"
	}
	return "busy"
}

// phaseWords writes a phase as people say it: RolledBack is "rolled back".
func phaseWords(p release.Phase) string {
	var b strings.Builder
	for i, r := range string(p) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// columns orders the environments: configured ones first, in their order,
// then any others the records name.
func columns(configured []string, seen map[string]bool) []string {
	var out []string
	for _, e := range configured {
		if seen[e] && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	var rest []string
	for e := range seen {
		if !slices.Contains(out, e) {
			rest = append(rest, e)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// previewRows lists the previews that are not stopped, newest activity
// first. A preview's age runs from its first deployment.
func previewRows(ps []store.Preview, ds []store.Deployment, now time.Time) []PreviewRow {
	first := map[string]time.Time{}
	for _, d := range ds {
		if t, ok := first[d.Preview]; d.Preview != "" && (!ok || d.Created.Before(t)) {
			first[d.Preview] = d.Created
		}
	}
	ps = slices.DeleteFunc(slices.Clone(ps), func(p store.Preview) bool { return p.Status == store.PreviewStopped })
	slices.SortFunc(ps, func(a, b store.Preview) int {
		return cmp.Or(b.LastActivity.Compare(a.LastActivity), strings.Compare(a.Key, b.Key))
	})
	out := make([]PreviewRow, 0, len(ps))
	for _, p := range ps {
		born, ok := first[p.Key]
		if !ok {
			born = p.LastActivity
		}
		out = append(out, PreviewRow{
			Project: p.Project, IID: p.IID, Title: p.Title, WebURL: p.WebURL, Branch: p.SourceBranch,
			SHA: short(cmp.Or(p.DeployedSHA, p.HeadSHA)), Status: p.Status, Class: previewClass(p.Status),
			URL: p.URL, Age: Ago(now.Sub(born)), By: p.User, Reason: p.Reason,
		})
	}
	return out
}

func previewClass(s store.PreviewStatus) string {
	switch s {
	case store.PreviewReady:
		return "ok"
	case store.PreviewFailed:
		return "bad"
	case store.PreviewWaiting:
		return "wait"
	}
	return "busy"
}

func short(sha string) string { return sha[:min(len(sha), 8)] }

// Ago says how long, the way people do: 45s, 12m, 3h5m, 2d4h.
func Ago(d time.Duration) string {
	const day = 24 * time.Hour
	two := func(a int, ua string, b int, ub string) string {
		if b == 0 {
			return strconv.Itoa(a) + ua
		}
		return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < day:
		return two(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "m")
	}
	return two(int(d/day), "d", int(d%day/time.Hour), "h")
}

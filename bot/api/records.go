package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/deployer/store"
)

// Records is what the read API needs of the store: deployment and preview
// records. *store.Store implements it.
type Records interface {
	Deployments(keep func(store.Deployment) bool) ([]store.Deployment, error)
	Previews(keep func(store.Preview) bool) ([]store.Preview, error)
}

// DeploymentPage is one page of deployments, newest first. Next, when set,
// is the cursor of the following page.
type DeploymentPage struct {
	Items []store.Deployment `json:"items"`
	Next  string             `json:"next,omitempty"`
}

// Preview is a merge request's preview environment as the API shows it: the
// stored record, plus the environment and the time of its first deployment,
// read from its deployment records.
type Preview struct {
	store.Preview
	Environment string    `json:"environment,omitempty"` // empty until its first deployment
	Created     time.Time `json:"created,omitzero"`      // first deployment; zero until then
}

// PreviewPage is one page of previews. Next, when set, is the cursor of the
// following page.
type PreviewPage struct {
	Items []Preview `json:"items"`
	Next  string    `json:"next,omitempty"`
}

// Statuses the record lists accept in status=.
var (
	deploymentStatuses = []string{
		string(store.StatusPending), string(store.StatusRunning), string(store.StatusSucceeded),
		string(store.StatusFailed), string(store.StatusSuperseded),
	}
	previewStatuses = []string{
		string(store.PreviewWaiting), string(store.PreviewDeploying), string(store.PreviewReady),
		string(store.PreviewFailed), string(store.PreviewStopping), string(store.PreviewStopped),
	}
)

// The query parameters each record list knows.
var (
	deploymentParams = []string{"project", "app", "environment", "cluster", "ref", "user", "status", "since", "until", "limit", "cursor"}
	previewParams    = []string{"project", "environment", "ref", "user", "status", "since", "until", "limit", "cursor"}
)

// recordQuery is a parsed GET /deployments or /previews query. All its
// filters must hold together; empty ones match everything.
type recordQuery struct {
	project, app, environment, cluster, ref, user string
	statuses                                      []string
	since, until                                  time.Time
	limit                                         int
	cursor                                        string
}

// match reports whether one record's fields pass the filters; at is the
// time since= and until= apply to.
func (q recordQuery) match(project, app, env, cluster, ref, user, status string, at time.Time) bool {
	for _, f := range [][2]string{{q.project, project}, {q.app, app}, {q.environment, env}, {q.cluster, cluster}, {q.ref, ref}, {q.user, user}} {
		if f[0] != "" && f[0] != f[1] {
			return false
		}
	}
	return (len(q.statuses) == 0 || slices.Contains(q.statuses, status)) &&
		(q.since.IsZero() || !at.Before(q.since)) &&
		(q.until.IsZero() || at.Before(q.until))
}

// deployments answers GET /deployments: deployment records newest first.
func (a *API) deployments(c echo.Context) error {
	q, what, err := parseRecordQuery(c.QueryParams(), deploymentParams, deploymentStatuses)
	if err != nil {
		return badRequest(c, what, "%s", err.Error())
	}
	ds, err := a.records.Deployments(func(d store.Deployment) bool {
		return q.match(d.Project, d.App, d.Environment, d.Cluster, d.Ref, d.User, string(d.Status), d.Created) &&
			(q.cursor == "" || d.ID < q.cursor)
	})
	if err != nil {
		return a.fail(c, "", err)
	}
	// The store lists oldest first and ids sort by creation, so a cursor
	// stays valid while new deployments are recorded, as with releases.
	slices.Reverse(ds)
	page := DeploymentPage{Items: []store.Deployment{}}
	if len(ds) > q.limit {
		ds = ds[:q.limit]
		page.Next = ds[len(ds)-1].ID
	}
	page.Items = append(page.Items, ds...)
	return c.JSON(http.StatusOK, page)
}

// previews answers GET /previews: previews by project, newest merge
// request first. Previews are never deleted, only stopped, so a cursor
// (the last item's project and merge request) stays valid.
func (a *API) previews(c echo.Context) error {
	q, what, err := parseRecordQuery(c.QueryParams(), previewParams, previewStatuses)
	if err != nil {
		return badRequest(c, what, "%s", err.Error())
	}
	var after previewPos
	if q.cursor != "" {
		if after, err = parsePreviewCursor(q.cursor); err != nil {
			return badRequest(c, "cursor", "%s", err.Error())
		}
	}
	first, err := a.previewDeploys()
	if err != nil {
		return a.fail(c, "", err)
	}
	ps, err := a.records.Previews(func(p store.Preview) bool {
		d := first[p.Key]
		return q.match(p.Project, "", d.Environment, "", p.SourceBranch, p.User, string(p.Status), p.Updated) &&
			(q.cursor == "" || after.before(posOf(p)))
	})
	if err != nil {
		return a.fail(c, "", err)
	}
	slices.SortFunc(ps, func(x, y store.Preview) int { return posOf(x).compare(posOf(y)) })
	page := PreviewPage{Items: []Preview{}}
	if len(ps) > q.limit {
		ps = ps[:q.limit]
		page.Next = posOf(ps[len(ps)-1]).String()
	}
	for _, p := range ps {
		d := first[p.Key]
		page.Items = append(page.Items, Preview{Preview: p, Environment: d.Environment, Created: d.Created})
	}
	return c.JSON(http.StatusOK, page)
}

// previewDeploys maps each preview key to its first deployment, which says
// the preview's environment and when it was first deployed.
func (a *API) previewDeploys() (map[string]store.Deployment, error) {
	first := map[string]store.Deployment{}
	_, err := a.records.Deployments(func(d store.Deployment) bool {
		if _, seen := first[d.Preview]; d.Preview != "" && !seen {
			first[d.Preview] = d
		}
		return false
	})
	return first, err
}

// previewPos is where a preview sorts in a list: by project path, then
// newest merge request (highest iid) first.
type previewPos struct {
	project string
	iid     int64
}

func posOf(p store.Preview) previewPos { return previewPos{p.Project, p.IID} }

func (p previewPos) compare(o previewPos) int {
	return cmp.Or(strings.Compare(p.project, o.project), cmp.Compare(o.iid, p.iid))
}

// before reports whether p sorts before o: o belongs on a page after p.
func (p previewPos) before(o previewPos) bool { return p.compare(o) < 0 }

// String is the cursor form, "shop/web!12", as GitLab writes a merge request.
func (p previewPos) String() string { return p.project + "!" + strconv.FormatInt(p.iid, 10) }

func parsePreviewCursor(s string) (previewPos, error) {
	i := strings.LastIndexByte(s, '!')
	if i < 1 {
		return previewPos{}, fmt.Errorf("%q is not the next of a previous page", s)
	}
	iid, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || iid < 1 {
		return previewPos{}, fmt.Errorf("%q is not the next of a previous page", s)
	}
	return previewPos{s[:i], iid}, nil
}

// parseRecordQuery parses the query of a record list that knows params and
// whose status= takes statuses. On error it also says which parameter is
// wrong.
func parseRecordQuery(v url.Values, params, statuses []string) (recordQuery, string, error) {
	q := recordQuery{limit: DefaultLimit}
	if name, err := knownParams(v, params); err != nil {
		return q, name, err
	}
	if name, err := readStrings(v, map[string]*string{"project": &q.project, "app": &q.app, "environment": &q.environment,
		"cluster": &q.cluster, "ref": &q.ref, "user": &q.user, "cursor": &q.cursor}); err != nil {
		return q, name, err
	}
	if name, err := span(v, &q.since, &q.until); err != nil {
		return q, name, err
	}
	var err error
	if q.limit, err = pageLimit(v); err != nil {
		return q, "limit", err
	}
	if q.statuses, err = parseStatuses(v, statuses); err != nil {
		return q, "status", err
	}
	return q, "", nil
}

// parseStatuses reads status=, repeated or comma-separated, in any case.
func parseStatuses(v url.Values, known []string) ([]string, error) {
	var out []string
	for _, s := range v["status"] {
		for name := range strings.SplitSeq(s, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if !slices.Contains(known, name) {
				return nil, fmt.Errorf("unknown status %q (statuses: %s)", name, strings.Join(known, ", "))
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

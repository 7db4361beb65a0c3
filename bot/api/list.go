package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shipbot/shipbot/deployer/release"
)

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is one page of a release list, newest first. Next, when set, is the
// cursor of the following page.
type Page struct {
	Items []Release `json:"items"`
	Next  string    `json:"next,omitempty"`
}

// phases are all the phases, for parsing and for active=.
var phases = []release.Phase{
	release.Pending, release.Progressing, release.Verifying, release.Paused, release.RollingBack,
	release.Succeeded, release.RolledBack, release.Failed, release.Aborted,
}

// listQuery is a parsed GET /releases query.
type listQuery struct {
	filter release.Filter
	none   bool // the filters can match nothing, e.g. active=true&phase=Succeeded
	limit  int
	cursor string
}

// list answers GET /releases.
func (a *API) list(c echo.Context) error {
	q, what, err := parseListQuery(c.QueryParams())
	if err != nil {
		return badRequest(c, what, "%s", err.Error())
	}
	page := Page{Items: []Release{}}
	if q.none {
		return c.JSON(http.StatusOK, page)
	}
	rs, err := a.releases.List(c.Request().Context(), q.filter)
	if err != nil {
		return a.fail(c, "", err)
	}
	if q.cursor != "" {
		// Release ids sort by creation and List is newest first, so the page
		// after a cursor starts at the first id below it. This holds even if
		// releases were created between two pages.
		rs = rs[firstBelow(rs, q.cursor):]
	}
	if len(rs) > q.limit {
		rs = rs[:q.limit]
		page.Next = rs[len(rs)-1].ID
	}
	for _, r := range rs {
		// A list shows where releases stand; their intents, checks and
		// history are in GET /releases/:id.
		r.Intents, r.Checks, r.History = nil, nil, nil
		page.Items = append(page.Items, a.view(r))
	}
	return c.JSON(http.StatusOK, page)
}

func firstBelow(rs []release.Release, cursor string) int {
	for i, r := range rs {
		if r.ID < cursor {
			return i
		}
	}
	return len(rs)
}

// listParams are the query parameters GET /releases knows.
var listParams = []string{"project", "app", "environment", "cluster", "phase", "user", "since", "until", "active", "limit", "cursor"}

// parseListQuery parses the query of GET /releases. On error it also says
// which parameter is wrong.
func parseListQuery(v url.Values) (listQuery, string, error) {
	q := listQuery{limit: DefaultLimit}
	if name, err := knownParams(v, listParams); err != nil {
		return q, name, err
	}
	if name, err := readStrings(v, map[string]*string{"project": &q.filter.Project, "app": &q.filter.App,
		"environment": &q.filter.Environment, "cluster": &q.filter.Cluster, "user": &q.filter.User, "cursor": &q.cursor}); err != nil {
		return q, name, err
	}
	if name, err := span(v, &q.filter.Since, &q.filter.Until); err != nil {
		return q, name, err
	}
	if err := parseLimit(v, &q); err != nil {
		return q, "limit", err
	}
	if err := parsePhases(v, &q); err != nil {
		return q, "phase", err
	}
	if err := parseActive(v, &q); err != nil {
		return q, "active", err
	}
	return q, "", nil
}

// knownParams refuses a query naming a parameter not in known, and says which.
func knownParams(v url.Values, known []string) (string, error) {
	for _, name := range slices.Sorted(maps.Keys(v)) {
		if name == "" {
			return "query", fmt.Errorf("a parameter has no name")
		}
		if !slices.Contains(known, name) {
			return name, fmt.Errorf("unknown query parameter (known: %s)", strings.Join(known, ", "))
		}
	}
	return "", nil
}

// readStrings reads each named parameter, given at most once, into its
// destination; on error it says which.
func readStrings(v url.Values, dsts map[string]*string) (string, error) {
	for _, name := range slices.Sorted(maps.Keys(dsts)) {
		s, err := single(v, name)
		if err != nil {
			return name, err
		}
		*dsts[name] = s
	}
	return "", nil
}

// span reads since= and until=, and refuses an empty or backwards span.
func span(v url.Values, since, until *time.Time) (string, error) {
	if err := parseTime(v, "since", since); err != nil {
		return "since", err
	}
	if err := parseTime(v, "until", until); err != nil {
		return "until", err
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(*until) {
		return "until", fmt.Errorf("must be after since")
	}
	return "", nil
}

// single returns the one value of a parameter given at most once.
func single(v url.Values, name string) (string, error) {
	switch vs := v[name]; len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vs[0]), nil
	default:
		return "", fmt.Errorf("given %d times; give it once", len(vs))
	}
}

func parseTime(v url.Values, name string, dst *time.Time) error {
	s, err := single(v, name)
	if err != nil || s == "" {
		return err
	}
	if *dst, err = time.Parse(time.RFC3339, s); err != nil {
		return fmt.Errorf("%q is not an RFC3339 time like 2026-03-01T10:00:00Z", s)
	}
	return nil
}

func parseLimit(v url.Values, q *listQuery) error {
	n, err := pageLimit(v)
	q.limit = n
	return err
}

// pageLimit reads limit=, DefaultLimit when absent.
func pageLimit(v url.Values) (int, error) {
	s, err := single(v, "limit")
	if err != nil || s == "" {
		return DefaultLimit, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return DefaultLimit, fmt.Errorf("%q is not a number in 1..%d", s, MaxLimit)
	}
	return n, nil
}

// parsePhases reads phase=, repeated or comma-separated, in any case.
func parsePhases(v url.Values, q *listQuery) error {
	for _, s := range v["phase"] {
		for name := range strings.SplitSeq(s, ",") {
			name = strings.TrimSpace(name)
			i := slices.IndexFunc(phases, func(p release.Phase) bool { return strings.EqualFold(string(p), name) })
			if i < 0 {
				return fmt.Errorf("unknown phase %q (phases: %s)", name, joinPhases(phases))
			}
			if !slices.Contains(q.filter.Phases, phases[i]) {
				q.filter.Phases = append(q.filter.Phases, phases[i])
			}
		}
	}
	return nil
}

// parseActive narrows the phases to those that have (active=true) or have
// not (active=false) ended.
func parseActive(v url.Values, q *listQuery) error {
	s, err := single(v, "active")
	if err != nil || s == "" {
		return err
	}
	active, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	from := q.filter.Phases
	if len(from) == 0 {
		from = phases
	}
	q.filter.Phases = slices.DeleteFunc(slices.Clone(from), func(p release.Phase) bool { return p.Terminal() == active })
	q.none = len(q.filter.Phases) == 0
	return nil
}

func joinPhases(ps []release.Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

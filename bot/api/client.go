package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/bot/ops"
	"github.com/shipbot/shipbot/deployer/errkind"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
)

// Client calls a shipbot's API. The CLI uses it; so can anything else that
// wants releases, deployments or previews over HTTP.
type Client struct {
	Server  string          // base URL, e.g. http://127.0.0.1:8080
	Token   string          // the server's api.token
	Actor   string          // who acts, sent as X-Shipbot-Actor on controls
	Surface release.Surface // sent as X-Shipbot-Surface; the server assumes api when empty
	HTTP    *http.Client    // a client with a 30s timeout when nil
}

// Query selects releases for List. Zero fields match everything.
type Query struct {
	Project     string
	App         string
	Environment string
	Cluster     string
	Phases      []string
	User        string
	Since       time.Time
	Until       time.Time
	Active      bool // only releases that have not ended
	Limit       int  // DefaultLimit when 0
	Cursor      string
}

// Values encodes q as GET /releases query parameters.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("project", q.Project)
	set("app", q.App)
	set("environment", q.Environment)
	set("cluster", q.Cluster)
	set("user", q.User)
	set("cursor", q.Cursor)
	for _, p := range q.Phases {
		v.Add("phase", p)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339))
	}
	if q.Active {
		v.Set("active", "true")
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// StatusError is an error answer of the API.
type StatusError struct {
	Code    int
	Message string
}

// Error reads like "409 Conflict: pause release r1: conflict: it is already paused".
func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Unwrap gives an error of the kind the status stands for, so callers can
// test it with errors.Is as they would the engine's own errors.
func (e *StatusError) Unwrap() error {
	switch errkind.FromHTTPStatus(e.Code) {
	case errkind.NotFound:
		return store.ErrNotFound
	case errkind.Conflict:
		return release.ErrConflict
	case errkind.Invalid:
		return release.ErrInvalid
	case errkind.Forbidden:
		return ops.ErrForbidden
	}
	return nil
}

// List reads one page of releases, newest first.
func (c *Client) List(ctx context.Context, q Query) (Page, error) {
	var p Page
	err := c.do(ctx, http.MethodGet, "/releases?"+q.Values().Encode(), nil, &p)
	return p, err
}

// Get reads one release with its history.
func (c *Client) Get(ctx context.Context, id string) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodGet, "/releases/"+url.PathEscape(id), nil, &r)
	return r, err
}

// RecordQuery selects deployments or previews. Zero fields match
// everything; App and Cluster apply to deployments only.
type RecordQuery struct {
	Project     string
	App         string
	Environment string
	Cluster     string
	Ref         string
	User        string
	Statuses    []string
	Since       time.Time
	Until       time.Time
	Limit       int // DefaultLimit when 0
	Cursor      string
}

// Values encodes q as GET /deployments or /previews query parameters.
func (q RecordQuery) Values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{
		"project": q.Project, "app": q.App, "environment": q.Environment, "cluster": q.Cluster,
		"ref": q.Ref, "user": q.User, "cursor": q.Cursor,
	} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for _, s := range q.Statuses {
		v.Add("status", s)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Deployments reads one page of deployment records, newest first.
func (c *Client) Deployments(ctx context.Context, q RecordQuery) (DeploymentPage, error) {
	var p DeploymentPage
	err := c.do(ctx, http.MethodGet, "/deployments?"+q.Values().Encode(), nil, &p)
	return p, err
}

// Previews reads one page of preview environments.
func (c *Client) Previews(ctx context.Context, q RecordQuery) (PreviewPage, error) {
	var p PreviewPage
	err := c.do(ctx, http.MethodGet, "/previews?"+q.Values().Encode(), nil, &p)
	return p, err
}

// Control asks for action (ActionContinue, …) on release id. The server
// records the intent and answers with the release; the engine acts on it
// shortly after.
func (c *Client) Control(ctx context.Context, id, action string, req ControlRequest) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodPost, "/releases/"+url.PathEscape(id)+"/"+action, &req, &r)
	return r, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	base, err := url.Parse(strings.TrimRight(c.Server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("server %q: want a URL like http://127.0.0.1:8080", c.Server)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.String()+Prefix+path, body)
	if err != nil {
		return err
	}
	c.setHeaders(req, in != nil)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		return statusError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: answer is not a shipbot API response: %w", method, req.URL.Path, err)
	}
	return nil
}

func (c *Client) setHeaders(req *http.Request, hasBody bool) {
	req.Header.Set("Accept", "application/json")
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Actor != "" {
		req.Header.Set(HeaderActor, c.Actor)
	}
	if c.Surface != "" {
		req.Header.Set(HeaderSurface, string(c.Surface))
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// statusError reads an error answer; one from something other than shipbot
// (a proxy, say) keeps the start of its body as the message.
func statusError(code int, raw []byte) error {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"` // Echo's own errors, e.g. 405
	}
	if err := json.Unmarshal(raw, &e); err == nil && e.Error+e.Message != "" {
		return &StatusError{Code: code, Message: e.Error + e.Message}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	return &StatusError{Code: code, Message: msg}
}

// Lock locks env for the client's actor; reason says why.
func (c *Client) Lock(ctx context.Context, env string, req LockRequest) (release.Lock, error) {
	var l release.Lock
	err := c.do(ctx, http.MethodPost, "/environments/"+url.PathEscape(env)+"/lock", &req, &l)
	return l, err
}

// Unlock removes env's lock and returns it; req.Force breaks another's.
func (c *Client) Unlock(ctx context.Context, env string, req LockRequest) (release.Lock, error) {
	var l release.Lock
	err := c.do(ctx, http.MethodPost, "/environments/"+url.PathEscape(env)+"/unlock", &req, &l)
	return l, err
}

// Locks lists every environment lock.
func (c *Client) Locks(ctx context.Context) ([]release.Lock, error) {
	var out struct {
		Locks []release.Lock `json:"locks"`
	}
	err := c.do(ctx, http.MethodGet, "/locks", nil, &out)
	return out.Locks, err
}

// Deploy releases req.Ref of req.Project to env; it needs a personal
// GitLab token as the client's Token.
func (c *Client) Deploy(ctx context.Context, env string, req DeployRequest) (Deployed, error) {
	var out Deployed
	err := c.do(ctx, http.MethodPost, "/environments/"+url.PathEscape(env)+"/deploy", &req, &out)
	return out, err
}

// PlanLastGood asks what going back to the last good versions of project
// (in env, when set) would change.
func (c *Client) PlanLastGood(ctx context.Context, project, env string) (LastGoodPlan, error) {
	q := url.Values{"project": {project}}
	if env != "" {
		q.Set("environment", env)
	}
	var out LastGoodPlan
	err := c.do(ctx, http.MethodGet, "/rollback/last-good?"+q.Encode(), nil, &out)
	return out, err
}

// RestoreLastGood applies the plan req.Digest confirms.
func (c *Client) RestoreLastGood(ctx context.Context, req RestoreRequest) (Restored, error) {
	var out Restored
	err := c.do(ctx, http.MethodPost, "/rollback/last-good", &req, &out)
	return out, err
}

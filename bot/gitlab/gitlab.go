// Package gitlab is shipbot's only door to GitLab's REST API. It wraps
// gitlab.com/gitlab-org/api/client-go behind the few calls shipbot makes and
// speaks shipbot's own types, so no SDK type travels further into the bot.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// API is what shipbot calls on GitLab.
type API interface {
	CreateMRNote(ctx context.Context, projectID, iid int64, body string) (noteID int64, err error)
	UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error
	AwardMRNoteEmoji(ctx context.Context, projectID, iid, noteID int64, emoji string) error
	AccessLevel(ctx context.Context, projectID, userID int64) (AccessLevel, error)
	MergeRequest(ctx context.Context, projectID, iid int64) (MergeRequest, error)
	MergeRequestsForCommit(ctx context.Context, projectID int64, sha string) ([]MergeRequest, error)
	EnsureEnvironment(ctx context.Context, projectID int64, name, externalURL string) (envID int64, err error)
	StopEnvironment(ctx context.Context, projectID, envID int64) error
	CreateDeployment(ctx context.Context, projectID int64, d Deployment) (deploymentID int64, err error)
	UpdateDeployment(ctx context.Context, projectID, deploymentID int64, status string) error
	SetCommitStatus(ctx context.Context, projectID int64, sha, name, state, targetURL, description string) error
}

var _ API = (*Client)(nil)

// MergeRequest is the part of a GitLab merge request shipbot uses.
type MergeRequest struct {
	ProjectID, IID  int64
	Title           string
	State           string // opened, closed, locked or merged
	SourceBranch    string
	TargetBranch    string
	HeadSHA         string
	WebURL          string
	Labels          []string
	UpdatedAt       time.Time
	MergeCommitSHA  string
	SquashCommitSHA string
}

// Deployment is a GitLab deployment record that shipbot creates for an environment.
type Deployment struct {
	Environment string
	Ref         string
	SHA         string
	Tag         bool
	Status      string // one of the Deployment* constants; empty means running
}

// Deployment statuses GitLab accepts from the API.
const (
	DeploymentRunning  = "running"
	DeploymentSuccess  = "success"
	DeploymentFailed   = "failed"
	DeploymentCanceled = "canceled"
)

// Commit status states GitLab accepts on POST /projects/:id/statuses/:sha.
const (
	StatePending  = "pending"
	StateRunning  = "running"
	StateSuccess  = "success"
	StateFailed   = "failed"
	StateCanceled = "canceled"
)

// Emoji shipbot awards on notes to acknowledge commands.
const (
	EmojiEyes  = "eyes"
	EmojiCheck = "white_check_mark"
	EmojiCross = "x"
)

var (
	// ErrNotFound is wrapped by errors for GitLab's 404 answers.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is wrapped by errors for GitLab's 401 and 403 answers.
	ErrUnauthorized = errors.New("unauthorized")
)

// StatusError is a non-2xx, non-404 answer from GitLab.
type StatusError struct {
	Code    int
	Method  string
	URL     string // without query string
	Message string // GitLab's message, flattened
}

// Error describes the request and GitLab's answer.
func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, e.Message)
}

// Unwrap lets errors.Is(err, ErrUnauthorized) match 401 and 403.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden {
		return ErrUnauthorized
	}
	return nil
}

// Client talks to one GitLab instance with one token. It is safe for concurrent use.
type Client struct {
	gl *gl.Client
	// as builds a client that acts with another token, on the same
	// instance and HTTP client: to ask who a person's token belongs to.
	as func(token string) (*gl.Client, error)
}

// Option configures New.
type Option func(*options)

type options struct {
	httpClient *http.Client
	retryMax   int
}

// WithHTTPClient replaces the default HTTP client, whose timeout is 10 s per attempt.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRetryMax sets how often a 429 or 5xx answer is retried; 0 disables retries.
func WithRetryMax(n int) Option { return func(o *options) { o.retryMax = n } }

// requestTimeout bounds one HTTP attempt; retries get their own.
const requestTimeout = 10 * time.Second

// New returns a client for the GitLab at baseURL (e.g. https://gitlab.example.com,
// with or without /api/v4) that authenticates with token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, errors.New("gitlab: base URL does not parse") // it may hold credentials: not echoed
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gitlab: base URL %q must be an absolute http(s) URL", u.Redacted())
	}
	if token == "" {
		return nil, errors.New("gitlab: empty token")
	}
	o := options{retryMax: 5}
	for _, opt := range opts {
		opt(&o)
	}
	o.retryMax = max(o.retryMax, 0)
	if o.httpClient == nil {
		o.httpClient = &http.Client{
			Timeout:   requestTimeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
		}
	}
	clientOpts := []gl.ClientOptionFunc{
		gl.WithBaseURL(baseURL),
		gl.WithHTTPClient(o.httpClient),
		gl.WithCustomRetryMax(o.retryMax),
	}
	// A custom policy would make the SDK's WithoutRetries moot: one or the other.
	retries := gl.WithCustomRetry(retryPolicy)
	if o.retryMax == 0 {
		retries = gl.WithoutRetries()
	}
	c, err := gl.NewClient(token, append(slices.Clone(clientOpts), retries)...)
	if err != nil {
		// The SDK's errors name the URL, never the token.
		return nil, fmt.Errorf("gitlab: new client: %w", err)
	}
	as := func(token string) (*gl.Client, error) {
		return gl.NewClient(token, append(slices.Clone(clientOpts), gl.WithoutRetries())...)
	}
	return &Client{gl: c, as: as}, nil
}

// wrap turns an SDK error into one of ours, prefixed with what failed, so no
// SDK error type leaves the package.
func wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var er *gl.ErrorResponse
	switch {
	case errors.Is(err, gl.ErrNotFound):
		return fmt.Errorf("gitlab: %s: %w", what, ErrNotFound)
	case errors.As(err, &er):
		return fmt.Errorf("gitlab: %s: %w", what, statusError(er))
	default:
		return fmt.Errorf("gitlab: %s: %w", what, err)
	}
}

func statusError(er *gl.ErrorResponse) *StatusError {
	se := &StatusError{Message: er.Message}
	if r := er.Response; r != nil {
		se.Code = r.StatusCode
		if req := r.Request; req != nil {
			se.Method = req.Method
			u := *req.URL
			u.RawQuery, u.User = "", nil
			se.URL = u.String()
		}
	}
	return se
}

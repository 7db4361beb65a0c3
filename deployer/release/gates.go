package release

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// When says where in a stage a gate runs.
type When string

// Gate positions. Pods is the built-in check that the pods serving a
// stage's target are available before the progress deadline.
const (
	Before When = "before"
	After  When = "after"
	Pods   When = "pods"
)

// FailureAction is what a failed gate does to the release.
type FailureAction string

// Failure actions.
const (
	FailRollback FailureAction = "rollback" // the default
	FailPause    FailureAction = "pause"
)

// Gate is a check a stage must pass, before or after its actions.
type Gate struct {
	Name       string          `json:"name" yaml:"name"`
	HTTP       *HTTPGate       `json:"http,omitempty" yaml:"http,omitempty"`
	Prometheus *PrometheusGate `json:"prometheus,omitempty" yaml:"prometheus,omitempty"`
	// MergeRequestApproval waits for approvals in GitLab of the merge
	// request that produced the build.
	MergeRequestApproval *MergeRequestApprovalGate `json:"mergeRequestApproval,omitempty" yaml:"mergeRequestApproval,omitempty"`
	OnFailure            FailureAction             `json:"onFailure,omitempty" yaml:"onFailure,omitempty"`
}

// HTTPGate POSTs a JSON description of the release and stage. A 2xx answer
// passes, except 202, which means pending: the hook is asked again every
// Interval until it answers otherwise or Timeout has passed.
type HTTPGate struct {
	URL      string        `json:"url" yaml:"url"`
	Timeout  time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`   // default 10m
	Interval time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"` // default 10s
}

// PrometheusGate evaluates an instant PromQL query every Interval for
// Duration. A run fails when the query returns no sample or its value does
// not satisfy `value Op Threshold`; FailureLimit failed runs fail the gate.
type PrometheusGate struct {
	Address      string        `json:"address" yaml:"address"` // base URL, e.g. http://prometheus:9090
	Query        string        `json:"query" yaml:"query"`
	Op           string        `json:"op" yaml:"op"` // <, <=, >, >=, ==, !=
	Threshold    float64       `json:"threshold" yaml:"threshold"`
	Interval     time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"`         // default 1m
	Duration     time.Duration `json:"duration,omitempty" yaml:"duration,omitempty"`         // default one Interval
	FailureLimit int           `json:"failureLimit,omitempty" yaml:"failureLimit,omitempty"` // default 1
}

// CheckStatus is where one gate's evaluation stands.
type CheckStatus string

// Check statuses.
const (
	CheckRunning CheckStatus = "running"
	CheckPassed  CheckStatus = "passed"
	CheckFailed  CheckStatus = "failed"
)

// Check is the persisted state of one gate's evaluation in one stage, so
// that a resumed release neither repeats a passed gate nor forgets failures.
type Check struct {
	Stage    int         `json:"stage"`
	When     When        `json:"when"`
	Gate     string      `json:"gate"`
	Status   CheckStatus `json:"status"`
	Started  time.Time   `json:"started"`
	Next     time.Time   `json:"next,omitzero"` // earliest time of the next evaluation
	Runs     int         `json:"runs"`
	Failures int         `json:"failures"`
	Message  string      `json:"message,omitempty"`
}

// check returns the current stage's check for a gate, starting one if needed.
func (r *Release) check(when When, gate string) *Check {
	for i := range r.Checks {
		c := &r.Checks[i]
		if c.Stage == r.Stage && c.When == when && c.Gate == gate {
			return c
		}
	}
	r.Checks = append(r.Checks, Check{Stage: r.Stage, When: when, Gate: gate, Status: CheckRunning, Started: r.now()})
	return &r.Checks[len(r.Checks)-1]
}

// runningCheck returns the current stage's unfinished check, if any.
func (r *Release) runningCheck() *Check {
	for i := range r.Checks {
		if c := &r.Checks[i]; c.Stage == r.Stage && c.Status == CheckRunning {
			return c
		}
	}
	return nil
}

// dropRunningChecks forgets checks that have not passed, so that they start
// afresh when their stage runs again after a pause or a promote.
func (r *Release) dropRunningChecks() {
	r.Checks = slices.DeleteFunc(r.Checks, func(c Check) bool { return c.Status != CheckPassed })
}

// gatePayload is what an HTTP gate receives.
type gatePayload struct {
	Release     string   `json:"release"`
	App         string   `json:"app"`
	Project     string   `json:"project"`
	Environment string   `json:"environment"`
	Cluster     string   `json:"cluster"`
	Namespace   string   `json:"namespace"`
	Strategy    Strategy `json:"strategy"`
	From        Revision `json:"from,omitzero"`
	To          Revision `json:"to"`
	Stage       int      `json:"stage"` // 1-based
	Stages      int      `json:"stages"`
	Target      int      `json:"target"`
	Gate        string   `json:"gate"`
	When        When     `json:"when"`
}

// evaluate runs one evaluation of a gate and updates its check.
func (e *Stepper) evaluate(ctx context.Context, r *Release, g Gate, c *Check) {
	now := e.clock.Now()
	c.Runs++
	switch {
	case g.HTTP != nil:
		e.evalHTTP(ctx, r, g, c, now)
	case g.Prometheus != nil:
		e.evalPrometheus(ctx, g.Prometheus, c, now)
	case g.MergeRequestApproval != nil:
		e.evalMRApproval(ctx, r, g.MergeRequestApproval, c, now)
	default:
		c.Status, c.Message = CheckFailed, "gate has no kind: http, prometheus or mergeRequestApproval"
	}
}

func (e *Stepper) evalHTTP(ctx context.Context, r *Release, g Gate, c *Check, now time.Time) {
	h := g.HTTP
	timeout, interval := orDefault(h.Timeout, 10*time.Minute), orDefault(h.Interval, 10*time.Second)
	code, msg := e.postGate(ctx, h.URL, gatePayload{
		Release: r.ID, App: r.App, Project: r.Project, Environment: r.Environment, Cluster: r.Cluster,
		Namespace: r.Namespace, Strategy: r.Strategy, From: r.From, To: r.To,
		Stage: r.Stage + 1, Stages: len(r.Stages), Target: r.Target(), Gate: g.Name, When: c.When,
	})
	switch {
	case code == http.StatusAccepted || code == 0:
		// Pending, or the hook is unreachable: ask again until the timeout.
		c.Message = msg
		if now.Sub(c.Started) >= timeout {
			c.Status, c.Message = CheckFailed, fmt.Sprintf("still %s after %s", msg, timeout)
			return
		}
		c.Next = now.Add(interval)
	case code >= 200 && code < 300:
		c.Status, c.Message = CheckPassed, msg
	default:
		c.Failures++
		c.Status, c.Message = CheckFailed, msg
	}
}

// postGate returns the HTTP status (0 if there was none) and a short message.
func (e *Stepper) postGate(ctx context.Context, hook string, p gatePayload) (int, string) {
	body, _ := json.Marshal(p) // plain strings and numbers: cannot fail
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid hook URL"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		// The error may quote the URL, and with it a token in the query: leave it out.
		return 0, "unreachable (" + redactedHost(hook) + ")"
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		msg += ": " + s
	}
	if resp.StatusCode == http.StatusAccepted {
		msg = "pending (" + msg + ")"
	}
	return resp.StatusCode, msg
}

func redactedHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "bad URL"
	}
	return u.Host
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

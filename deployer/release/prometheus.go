package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// evalPrometheus runs one evaluation of a Prometheus gate. The gate passes
// once Duration has elapsed since its first run with fewer than FailureLimit
// failed runs; it fails as soon as the limit is reached.
func (e *Stepper) evalPrometheus(ctx context.Context, p *PrometheusGate, c *Check, now time.Time) {
	interval := orDefault(p.Interval, time.Minute)
	duration := orDefault(p.Duration, interval)
	limit := max(p.FailureLimit, 1)
	v, err := e.queryPrometheus(ctx, p.Address, p.Query)
	switch {
	case err != nil:
		c.Failures++
		c.Message = fmt.Sprintf("run %d: %v", c.Runs, err)
	case !compare(v, p.Op, p.Threshold):
		c.Failures++
		c.Message = fmt.Sprintf("run %d: %s = %g, want %s %g", c.Runs, p.Query, v, p.Op, p.Threshold)
	default:
		c.Message = fmt.Sprintf("run %d: %s = %g", c.Runs, p.Query, v)
	}
	switch {
	case c.Failures >= limit:
		c.Status = CheckFailed
		c.Message = fmt.Sprintf("%d of %d runs failed; last %s", c.Failures, c.Runs, c.Message)
	case now.Sub(c.Started) >= duration:
		c.Status = CheckPassed
	default:
		c.Next = now.Add(interval)
	}
}

// compare reports whether `v op threshold` holds; an unknown op never holds.
func compare(v float64, op string, threshold float64) bool {
	switch op {
	case "<":
		return v < threshold
	case "<=":
		return v <= threshold
	case ">":
		return v > threshold
	case ">=":
		return v >= threshold
	case "==":
		return v == threshold
	case "!=":
		return v != threshold
	}
	return false
}

// promResponse is the part of /api/v1/query's answer we read.
type promResponse struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// errNoData is a query that returned no sample: the metric is missing, which
// for a release gate is as bad as a bad value.
var errNoData = errors.New("query returned no data")

// queryPrometheus runs an instant query at the server's current time and
// returns its single value (a scalar, or a vector of exactly one sample).
func (e *Stepper) queryPrometheus(ctx context.Context, address, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := strings.TrimRight(address, "/") + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("prometheus address: %w", err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("prometheus at %s unreachable", redactedHost(address))
	}
	defer resp.Body.Close()
	var pr promResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pr); err != nil {
		return 0, fmt.Errorf("prometheus: HTTP %d, undecodable answer: %w", resp.StatusCode, err)
	}
	if pr.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s: %s", pr.ErrorType, pr.Error)
	}
	return promValue(pr.Data.ResultType, pr.Data.Result)
}

func promValue(resultType string, raw json.RawMessage) (float64, error) {
	var sample [2]any
	switch resultType {
	case "scalar":
		if err := json.Unmarshal(raw, &sample); err != nil {
			return 0, fmt.Errorf("prometheus scalar: %w", err)
		}
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(raw, &vec); err != nil {
			return 0, fmt.Errorf("prometheus vector: %w", err)
		}
		if len(vec) == 0 {
			return 0, errNoData
		}
		if len(vec) > 1 {
			return 0, fmt.Errorf("query returned %d series, want 1 (aggregate it, e.g. with sum())", len(vec))
		}
		sample = vec[0].Value
	default:
		return 0, fmt.Errorf("query returned a %s, want a scalar or a vector", resultType)
	}
	s, ok := sample[1].(string)
	if !ok {
		return 0, fmt.Errorf("prometheus sample value is %T, want a string", sample[1])
	}
	return strconv.ParseFloat(s, 64)
}

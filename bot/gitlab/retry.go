package gitlab

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// retryHeadroom is the longest the SDK waits before a retry (its 5xx
// backoff reaches 4.5 s by the fifth). With less time than that left to
// the caller's deadline a retry would most likely end in "context
// deadline exceeded", hiding what GitLab said: the answer in hand is
// returned instead, so a caller's error says 500 or 429.
const retryHeadroom = 5 * time.Second

// retryPolicy is the SDK's retry policy, less the retries the caller's
// deadline would cut short: it retries a 429 and a 5xx other than 501,
// and an error only when the request cannot have reached GitLab (its
// connection was not made) or is a GET.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < retryHeadroom {
		return false, nil
	}
	if err != nil {
		var op *net.OpError
		switch {
		case resp != nil && resp.Request != nil && resp.Request.Method == http.MethodGet:
			return true, nil
		case errors.As(err, &op) && op.Op == "dial":
			return true, nil
		}
		return false, nil
	}
	code := resp.StatusCode
	return code == http.StatusTooManyRequests || code == 0 || (code >= 500 && code != http.StatusNotImplemented), nil
}

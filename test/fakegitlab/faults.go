package fakegitlab

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// fault is a lasting failure of the requests that match it, until ended:
// answered code, or, with code 0, held unanswered.
type fault struct {
	method, prefix string
	code           int
	ended          chan struct{}
}

// Outage makes every request whose method and path match (as FailNext
// matches) answer code, until end is called. A 429 carries GitLab's
// RateLimit headers, with the limit reset in a second. Tests use it for
// an outage longer than a client's own retries.
func (s *Server) Outage(method, pathPrefix string, code int) (end func()) {
	return s.addFault(method, pathPrefix, code)
}

// Hang makes every request whose method and path match (as FailNext
// matches) wait unanswered until end is called, then be served, or until
// its client gives up. The test's cleanup ends it, so that Close does not
// wait for the held requests.
func (s *Server) Hang(method, pathPrefix string) (end func()) {
	return s.addFault(method, pathPrefix, 0)
}

func (s *Server) addFault(method, pathPrefix string, code int) func() {
	f := &fault{method: strings.ToUpper(method), prefix: fullPath(pathPrefix), code: code, ended: make(chan struct{})}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if i := slices.Index(s.faults, f); i >= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
			close(f.ended)
		}
	}
}

// lasting applies the first fault that matches r, if any, and reports
// whether it answered r.
func (s *Server) lasting(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	i := slices.IndexFunc(s.faults, func(f *fault) bool {
		return (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix)
	})
	var f *fault
	if i >= 0 {
		f = s.faults[i]
	}
	s.mu.Unlock()
	switch {
	case f == nil:
		return false
	case f.code == 0:
		select {
		case <-f.ended:
			return false // served as if it had only been slow
		case <-r.Context().Done():
			return true
		}
	}
	if f.code == http.StatusTooManyRequests {
		h := w.Header()
		h.Set("RateLimit-Limit", "600")
		h.Set("RateLimit-Remaining", "0")
		h.Set("Retry-After", "1")
	}
	apiError(w, f.code, fmt.Sprintf("%d %s", f.code, http.StatusText(f.code)))
	return true
}

package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// slack is a Slack Web API that keeps one channel's top-level messages as
// they stand, and that answers 503 to everything while down.
type slack struct {
	srv  *httptest.Server
	down atomic.Bool

	mu   sync.Mutex
	seq  int
	msgs map[string]string // ts → text and blocks, as last posted or updated
}

func newSlack(t *testing.T) *slack {
	s := &slack{msgs: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// apiURL is the base URL for slack.apiURL, with the trailing slash
// slack-go expects.
func (s *slack) apiURL() string { return s.srv.URL + "/" }

func (s *slack) serve(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := r.FormValue("ts")
	switch r.URL.Path {
	case "/chat.postMessage":
		if r.FormValue("thread_ts") != "" {
			ts = "1700000000.999999" // a thread reply: not kept
			break
		}
		s.seq++
		ts = fmt.Sprintf("1700000000.%06d", s.seq)
		s.msgs[ts] = r.FormValue("text") + r.FormValue("blocks")
	case "/chat.update":
		s.msgs[ts] = r.FormValue("text") + r.FormValue("blocks")
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.FormValue("channel"), ts)
}

// message returns the top-level message about rev as it stands.
func (s *slack) message(rev string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.Contains(m, rev) {
			return m
		}
	}
	return ""
}

// Slack is down while a release moves from 50 % to 100 % (see ridesOut).
// Once it is back, the release's one message is updated to its success.
func TestSlackDown(t *testing.T) {
	sl := newSlack(t)
	gl := fakegitlab.New(t, gitlabToken) // chat needs GitLab, to check who clicks
	gl.SetProjectPath(projectID, "shop/web")
	r := newRig(t)
	r.start(r.config(gl.URL(), fmt.Sprintf("slack: {botToken: xoxb-faults, signingSecret: faults-signing, channel: C0DEPLOYS, apiURL: %s}\n", sl.apiURL())))
	r.ridesOut("slack", func() func() {
		sl.down.Store(true)
		return func() { sl.down.Store(false) }
	}, "503 Service Unavailable")
	fixtures.Eventually(t, 10*time.Second, "v1-1-0's message says it succeeded", func() error {
		if m := sl.message("v1-1-0"); !strings.Contains(m, ":white_check_mark:") {
			return fmt.Errorf("message %q", m)
		}
		return nil
	})
}

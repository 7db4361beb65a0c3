// Package fakegitlab is an in-memory GitLab REST API for tests: just the
// endpoints bot/gitlab calls, answering with GitLab's documented payloads
// and, where it matters to a client, GitLab's documented quirks (a repeated
// emoji award is a 404, a repeated commit status state is a 400).
//
// Tests set state up with the Set* methods, run the code under test against
// URL(), then read the resulting state back (Notes, Environments, ...).
// Every call is counted, and calls to routes the fake does not know are
// answered 404 and kept in Unexpected. FailNext and BeforeNext act on one
// request; Outage and Hang fail or hold every matching one until ended.
package fakegitlab

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The user the token belongs to; it authors the fake's notes, awards and deployments.
const (
	BotUserID   int64 = 1
	BotUsername       = "shipbot"
)

const apiPrefix = "/api/v4"

// Server is a fake GitLab. Its methods are safe for concurrent use.
type Server struct {
	token string
	srv   *httptest.Server
	mux   *http.ServeMux

	mu         sync.Mutex
	now        func() time.Time
	calls      int
	callLog    []string // "METHOD /path" of every call, in order
	unexpected []string
	failures   []failure
	faults     []*fault // lasting failures: faults.go
	befores    []before
	ids        map[string]int64 // next id per kind
	projects   map[int64]*project
	groups     map[int64]map[int64]int // group -> user -> access level
	dir        directory               // users and project paths: users.go
	oauth      oauthState              // the OAuth provider: oauth.go
}

type failure struct {
	method, prefix string
	code           int
}

// before is a function a test runs ahead of one matching request.
type before struct {
	method, prefix string
	fn             func()
}

// New starts a fake GitLab that accepts only token and stops it when the test ends.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := Start(token)
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake GitLab that accepts only token, for programs that are
// not tests, such as the demo; Close stops it.
func Start(token string) *Server {
	s := &Server{
		token:    token,
		now:      time.Now,
		ids:      map[string]int64{},
		projects: map[int64]*project{},
		groups:   map[int64]map[int64]int{},
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.srv = httptest.NewServer(s)
	return s
}

// Close stops the server, waiting for the requests in hand.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) routes() {
	const p = apiPrefix + "/projects/{id}"
	const note = p + "/merge_requests/{iid}/notes/{note_id}"
	s.mux.HandleFunc("GET "+p+"/merge_requests/{iid}", s.getMergeRequest)
	s.mux.HandleFunc("GET "+p+"/merge_requests/{iid}/notes", s.listNotes)
	s.mux.HandleFunc("POST "+p+"/merge_requests/{iid}/notes", s.createNote)
	s.mux.HandleFunc("GET "+note, s.getNote)
	s.mux.HandleFunc("PUT "+note, s.updateNote)
	s.mux.HandleFunc("GET "+note+"/award_emoji", s.listAwards)
	s.mux.HandleFunc("POST "+note+"/award_emoji", s.createAward)
	s.mux.HandleFunc("GET "+p+"/members/all/{user_id}", s.getMember)
	s.mux.HandleFunc("GET "+p+"/repository/commits/{sha}/merge_requests", s.commitMergeRequests)
	s.mux.HandleFunc("GET "+p+"/environments", s.listEnvironments)
	s.mux.HandleFunc("POST "+p+"/environments", s.createEnvironment)
	s.mux.HandleFunc("PUT "+p+"/environments/{env_id}", s.editEnvironment)
	s.mux.HandleFunc("POST "+p+"/environments/{env_id}/stop", s.stopEnvironment)
	s.mux.HandleFunc("POST "+p+"/deployments", s.createDeployment)
	s.mux.HandleFunc("GET "+p+"/deployments/{deployment_id}", s.getDeployment)
	s.mux.HandleFunc("PUT "+p+"/deployments/{deployment_id}", s.updateDeployment)
	s.mux.HandleFunc("POST "+p+"/statuses/{sha}", s.setCommitStatus)
	s.mux.HandleFunc("GET "+p+"/repository/archive.tar.gz", s.archive)
	s.directoryRoutes()
	s.oauthRoutes()
	s.governanceRoutes()
}

// URL is the base URL to hand to the client, without /api/v4: the SDK
// appends /api/v4 itself (and accepts it already there).
func (s *Server) URL() string { return s.srv.URL }

// ServeHTTP counts the call, then answers unknown routes 404, a wrong
// PRIVATE-TOKEN 401 and an injected failure with its code, before routing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	s.callLog = append(s.callLog, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unexpectedCall(r)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	// The OAuth endpoints authenticate the browser or the client themselves.
	if !strings.HasPrefix(r.URL.Path, "/oauth/") && subtle.ConstantTimeCompare([]byte(r.Header.Get("PRIVATE-TOKEN")), []byte(s.token)) != 1 {
		if _, ok := s.personal(r); !ok || r.Method != http.MethodGet || r.URL.Path != apiPrefix+"/user" {
			apiError(w, http.StatusUnauthorized, "401 Unauthorized")
			return
		}
	}
	if s.lasting(w, r) {
		return
	}
	if code, ok := s.takeFailure(r); ok {
		apiError(w, code, fmt.Sprintf("%d %s", code, http.StatusText(code)))
		return
	}
	if fn := s.takeBefore(r); fn != nil {
		fn() // outside s.mu, so other requests go on meanwhile
	}
	s.mux.ServeHTTP(w, r)
}

// Calls is how many requests reached the server, answered or not.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// CallLog lists every call so far as "METHOD /path", in order; Calls is
// its length.
func (s *Server) CallLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callLog)
}

// Unexpected lists the calls ("METHOD /path?query") the fake has no route for.
func (s *Server) Unexpected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unexpected...)
}

// FailNext makes the next request whose method and path match answer code
// instead. An empty method matches any; pathPrefix may omit /api/v4.
// Each call injects one failure; several queue up.
func (s *Server) FailNext(method, pathPrefix string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{method: strings.ToUpper(method), prefix: fullPath(pathPrefix), code: code})
}

// BeforeNext runs fn ahead of the next request whose method and path match,
// as FailNext matches, holding that request until fn returns while others
// are served. Tests use it to make something happen at an exact point of a
// client's sequence of calls.
func (s *Server) BeforeNext(method, pathPrefix string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.befores = append(s.befores, before{method: strings.ToUpper(method), prefix: fullPath(pathPrefix), fn: fn})
}

func (s *Server) takeBefore(r *http.Request) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.befores {
		if (b.method == "" || b.method == r.Method) && strings.HasPrefix(r.URL.Path, b.prefix) {
			s.befores = append(s.befores[:i], s.befores[i+1:]...)
			return b.fn
		}
	}
	return nil
}

func fullPath(pathPrefix string) string {
	if !strings.HasPrefix(pathPrefix, apiPrefix) {
		pathPrefix = apiPrefix + "/" + strings.TrimPrefix(pathPrefix, "/")
	}
	return pathPrefix
}

// SetClock replaces time.Now for the timestamps the fake records.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

func (s *Server) takeFailure(r *http.Request) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			s.failures = append(s.failures[:i], s.failures[i+1:]...)
			return f.code, true
		}
	}
	return 0, false
}

func (s *Server) unexpectedCall(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unexpected = append(s.unexpected, r.Method+" "+r.URL.RequestURI())
}

var idBases = map[string]int64{"note": 3000, "award": 4000, "env": 500, "deployment": 7000, "status": 9000, "mr": 100000}

// nextID hands out ids per kind, each kind from its own range so a test that
// mixes up a note id and an MR iid fails instead of passing by luck.
// Callers hold s.mu.
func (s *Server) nextID(kind string) int64 {
	if s.ids[kind] == 0 {
		s.ids[kind] = idBases[kind]
	}
	s.ids[kind]++
	return s.ids[kind]
}

func (s *Server) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// project resolves the :id of the path. GitLab also takes a URL-encoded
// path there; shipbot uses numeric ids, so a path is answered 404 and kept
// in Unexpected. Callers hold s.mu.
func (s *Server) project(w http.ResponseWriter, r *http.Request) (*project, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.unexpected = append(s.unexpected, r.Method+" "+r.URL.RequestURI())
		apiError(w, http.StatusNotFound, "404 Project Not Found")
		return nil, false
	}
	return s.projectByID(id), true
}

// pathInt reads a numeric path value, answering 404 like GitLab's router when it is not one.
func pathInt(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return 0, false
	}
	return v, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers like GitLab's render_api_error!: {"message": msg}, where
// msg is a string or a map of field -> messages.
func apiError(w http.ResponseWriter, code int, msg any) {
	writeJSON(w, code, map[string]any{"message": msg})
}

// paramError answers like Grape's parameter validation: {"error": msg}.
func paramError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

// paginate applies GitLab's offset pagination (per_page 20 by default, at
// most 100) and sets its X-* headers.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	page := queryInt(r, "page", 1, 1, 1<<30)
	per := queryInt(r, "per_page", 20, 1, 100)
	total := len(items)
	pages := max(1, (total+per-1)/per)
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	lo := min((page-1)*per, total)
	hi := min(lo+per, total)
	return append(make([]T, 0, hi-lo), items[lo:hi]...)
}

func queryInt(r *http.Request, key string, def, lo, hi int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil || n < lo {
		return def
	}
	return min(n, hi)
}

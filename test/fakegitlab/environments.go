package fakegitlab

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// envName is GitLab's rule for environment names.
var envName = regexp.MustCompile(`^[a-zA-Z0-9 \-._/${}]+$`)

const envNameRule = "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"

func validEnvName(name string) bool {
	return len(name) <= 255 && envName.MatchString(name) &&
		!strings.HasPrefix(name, "/") && !strings.HasSuffix(name, "/")
}

// validURL is GitLab's check on external_url: empty, or absolute http(s).
func validURL(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && len(s) <= 255
}

// slug approximates GitLab's environment slug: lower case, runs of other
// characters as one '-', at most 24 characters.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 24 {
		s = strings.TrimRight(s[:24], "-")
	}
	return s
}

func (p *project) envByName(name string) *envState {
	for _, e := range p.envs {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// environment resolves :env_id, answering 404 when it does not exist. Callers hold s.mu.
func (s *Server) environment(w http.ResponseWriter, r *http.Request) (*envState, bool) {
	p, ok := s.project(w, r)
	if !ok {
		return nil, false
	}
	id, ok := pathInt(w, r, "env_id")
	if !ok {
		return nil, false
	}
	for _, e := range p.envs {
		if e.ID == id {
			return e, true
		}
	}
	apiError(w, http.StatusNotFound, "404 Environment Not Found")
	return nil, false
}

// listEnvironments supports GitLab's filters: name (exact), search (substring) and states.
func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Has("name") && q.Has("search") {
		paramError(w, "name, search are mutually exclusive")
		return
	}
	out := []envJSON{}
	for _, e := range p.envs {
		switch {
		case q.Has("name") && e.Name != q.Get("name"),
			q.Has("search") && !strings.Contains(e.Name, q.Get("search")),
			q.Has("states") && e.State != q.Get("states"):
			continue
		}
		out = append(out, envToJSON(e))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

func (s *Server) createEnvironment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return
	}
	if ps.missing(w, "name") {
		return
	}
	name, _ := ps.str("name")
	extURL, _ := ps.str("external_url")
	if e := s.envInvalid(p, name, extURL); e != nil {
		apiError(w, http.StatusBadRequest, e)
		return
	}
	writeJSON(w, http.StatusCreated, envToJSON(s.addEnv(p, name, extURL)))
}

// envInvalid returns GitLab's validation messages for a new environment, or nil.
func (s *Server) envInvalid(p *project, name, extURL string) map[string][]string {
	errs := map[string][]string{}
	switch {
	case strings.TrimSpace(name) == "":
		errs["name"] = []string{"can't be blank"}
	case !validEnvName(name):
		errs["name"] = []string{envNameRule}
	case p.envByName(name) != nil:
		errs["name"] = []string{"has already been taken"}
	}
	if !validURL(extURL) {
		errs["external_url"] = []string{"is blocked: Only allowed schemes are http, https"}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// addEnv creates an available environment. Callers hold s.mu.
func (s *Server) addEnv(p *project, name, extURL string) *envState {
	now := s.clock()
	e := &envState{
		Environment: Environment{ID: s.nextID("env"), Name: name, Slug: slug(name), ExternalURL: extURL, State: "available"},
		createdAt:   now, updatedAt: now,
	}
	p.envs = append(p.envs, e)
	return e
}

// editEnvironment updates external_url; GitLab no longer lets the API rename an environment.
func (s *Server) editEnvironment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.environment(w, r)
	if !ok {
		return
	}
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return
	}
	if extURL, ok := ps.str("external_url"); ok {
		if !validURL(extURL) {
			apiError(w, http.StatusBadRequest, map[string][]string{"external_url": {"is blocked: Only allowed schemes are http, https"}})
			return
		}
		e.ExternalURL = extURL
	}
	e.updatedAt = s.clock()
	writeJSON(w, http.StatusOK, envToJSON(e))
}

// stopEnvironment stops an environment. An API-created environment has no
// stop action, so it goes straight to "stopped"; stopping it again is a no-op.
func (s *Server) stopEnvironment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.environment(w, r)
	if !ok {
		return
	}
	if e.State != "stopped" {
		e.State, e.updatedAt = "stopped", s.clock()
	}
	writeJSON(w, http.StatusOK, envToJSON(e))
}

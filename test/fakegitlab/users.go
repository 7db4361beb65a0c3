package fakegitlab

import (
	"cmp"
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// User is a GitLab account the fake serves on /users.
type User struct {
	ID          int64
	Username    string
	Name        string // defaults to Username
	Email       string // primary email: only an administrator sees or searches it
	PublicEmail string // shown to everyone; set by the user, usually empty
	State       string // active (the default), blocked, deactivated, banned
}

// directory is the instance-wide part of the fake: users, project paths and
// whether the token is an administrator's. Its zero value is empty.
type directory struct {
	admin    bool
	personal map[string]int64 // a person's access token -> their user id
	users    map[int64]*userState
	paths    map[string]int64 // lower-case full path -> project id
}

type userState struct {
	User
	createdAt time.Time
}

func (s *Server) directoryRoutes() {
	s.mux.HandleFunc("GET "+apiPrefix+"/projects/{id}", s.getProject)
	s.mux.HandleFunc("GET "+apiPrefix+"/users", s.listUsers)
	s.mux.HandleFunc("GET "+apiPrefix+"/users/{user_id}", s.getUser)
	s.mux.HandleFunc("GET "+apiPrefix+"/user", s.currentUser)
}

// SetPersonalToken lets token act as user userID, who must be set with
// SetUser. With it the fake answers GET /user, who the token belongs to, and
// nothing else: shipbot only ever asks a person's token that. OAuth access
// tokens (oauth.go) are answered the same way.
func (s *Server) SetPersonalToken(token string, userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir.personal == nil {
		s.dir.personal = map[string]int64{}
	}
	s.dir.personal[token] = userID
}

// personal reports whether r carries a person's token, and whose: an
// access token in PRIVATE-TOKEN, or an OAuth token from /oauth/token as
// Authorization: Bearer.
func (s *Server) personal(r *http.Request) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.oauthUser(r); ok {
		return id, true
	}
	got := r.Header.Get("PRIVATE-TOKEN")
	for token, id := range s.dir.personal {
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return id, true
		}
	}
	return 0, false
}

// currentUser answers GET /user: the token's own user, the bot for
// shipbot's token.
func (s *Server) currentUser(w http.ResponseWriter, r *http.Request) {
	id, ok := s.personal(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, s.bot())
		return
	}
	u := s.dir.users[id]
	if u == nil {
		apiError(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	writeJSON(w, http.StatusOK, s.userEntity(u, true))
}

// SetUser creates or replaces a user.
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Name == "" {
		u.Name = u.Username
	}
	if u.State == "" {
		u.State = "active"
	}
	if s.dir.users == nil {
		s.dir.users = map[int64]*userState{}
	}
	s.dir.users[u.ID] = &userState{User: u, createdAt: s.clock()}
}

// SetAdmin says whether the token belongs to an administrator, who sees
// users' private emails and finds users by them.
func (s *Server) SetAdmin(admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.admin = admin
}

// SetProjectPath gives the project a full path such as "shop/web", by which
// GET /projects/:id also finds it. Without one a project is at
// group/project-<id>, matching the fake's web URLs.
func (s *Server) SetProjectPath(projectID int64, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projectByID(projectID)
	if s.dir.paths == nil {
		s.dir.paths = map[string]int64{}
	}
	for p, id := range s.dir.paths {
		if id == projectID {
			delete(s.dir.paths, p)
		}
	}
	s.dir.paths[strings.ToLower(path)] = projectID
}

// projectPath is the project's full path. Callers hold s.mu.
func (s *Server) projectPath(id int64) string {
	for p, pid := range s.dir.paths {
		if pid == id {
			return p
		}
	}
	return fmt.Sprintf("group/project-%d", id)
}

type namespaceJSON struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	FullPath string `json:"full_path"`
	WebURL   string `json:"web_url"`
}

// projectJSON is API::Entities::Project, trimmed.
type projectJSON struct {
	ID                int64         `json:"id"`
	Description       *string       `json:"description"`
	Name              string        `json:"name"`
	NameWithNamespace string        `json:"name_with_namespace"`
	Path              string        `json:"path"`
	PathWithNamespace string        `json:"path_with_namespace"`
	CreatedAt         time.Time     `json:"created_at"`
	DefaultBranch     string        `json:"default_branch"`
	Visibility        string        `json:"visibility"`
	WebURL            string        `json:"web_url"`
	Namespace         namespaceJSON `json:"namespace"`
}

// getProject answers GET /projects/:id, where :id is a numeric id (any
// exists) or a URL-encoded full path set with SetProjectPath. GitLab
// matches paths without regard to case.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		var ok bool
		if id, ok = s.dir.paths[strings.ToLower(raw)]; !ok {
			apiError(w, http.StatusNotFound, "404 Project Not Found")
			return
		}
	}
	if id <= 0 {
		apiError(w, http.StatusNotFound, "404 Project Not Found")
		return
	}
	s.projectByID(id)
	full := s.projectPath(id)
	i := strings.LastIndex(full, "/")
	ns, name := full[:max(i, 0)], full[i+1:]
	nsName := ns[strings.LastIndex(ns, "/")+1:]
	writeJSON(w, http.StatusOK, projectJSON{
		ID: id, Name: name, NameWithNamespace: strings.ReplaceAll(full, "/", " / "),
		Path: name, PathWithNamespace: full, CreatedAt: s.clock(), DefaultBranch: "main",
		Visibility: "private", WebURL: s.srv.URL + "/" + full,
		Namespace: namespaceJSON{ID: 1, Name: nsName, Path: nsName, Kind: "group", FullPath: ns, WebURL: s.srv.URL + "/groups/" + ns},
	})
}

// userDetailJSON is API::Entities::User (public_email and the profile) and,
// with Email and IsAdmin set, the administrator's UserWithAdmin.
type userDetailJSON struct {
	userJSON
	Locked      bool      `json:"locked"`
	CreatedAt   time.Time `json:"created_at"`
	Bio         string    `json:"bio"`
	PublicEmail string    `json:"public_email"`
	Email       *string   `json:"email,omitempty"`
	IsAdmin     *bool     `json:"is_admin,omitempty"`
}

// userBasicJSON is API::Entities::UserBasic, what GET /users shows anyone
// but an administrator: no email at all.
type userBasicJSON struct {
	userJSON
	Locked bool `json:"locked"`
}

func (s *Server) basicUser(u *userState) userJSON {
	j := s.user(u.ID, u.Username)
	j.Name, j.State = u.Name, u.State
	return j
}

// userEntity renders u as GitLab shows it to the token's owner. Callers hold s.mu.
func (s *Server) userEntity(u *userState, detail bool) any {
	basic := s.basicUser(u)
	if !detail && !s.dir.admin {
		return userBasicJSON{userJSON: basic, Locked: u.State == "blocked"}
	}
	j := userDetailJSON{userJSON: basic, Locked: u.State == "blocked", CreatedAt: u.createdAt, PublicEmail: u.PublicEmail}
	if s.dir.admin {
		isAdmin := false
		j.Email, j.IsAdmin = &u.Email, &isAdmin
	}
	return j
}

// listUsers answers GET /users with GitLab's username and search filters.
// username matches exactly, without regard to case. search matches
// usernames and names by substring and, exactly, the public email; an
// administrator's search matches the primary email instead.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	username := q.Get("username")
	search := strings.ToLower(strings.TrimPrefix(q.Get("search"), "@"))
	var users []*userState
	for _, u := range s.dir.users {
		if q.Has("username") && !strings.EqualFold(u.Username, username) {
			continue
		}
		if search != "" && !s.searchMatches(u, search) {
			continue
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b *userState) int { return cmp.Compare(b.ID, a.ID) }) // id desc, GitLab's default
	out := []any{}
	for _, u := range paginate(w, r, users) {
		out = append(out, s.userEntity(u, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// searchMatches is User.search: an exact email match, or a name or username
// containing the query. Callers hold s.mu.
func (s *Server) searchMatches(u *userState, q string) bool {
	email := u.PublicEmail
	if s.dir.admin {
		email = u.Email
	}
	return (email != "" && strings.EqualFold(email, q)) ||
		strings.Contains(strings.ToLower(u.Username), q) ||
		strings.Contains(strings.ToLower(u.Name), q)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := pathInt(w, r, "user_id")
	if !ok {
		return
	}
	u := s.dir.users[id]
	if u == nil {
		apiError(w, http.StatusNotFound, "404 User Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.userEntity(u, true))
}

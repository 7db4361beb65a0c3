package config

import (
	"crypto/subtle"
	"strings"
)

// HookProject is what webhook intake knows of one project: the id its path
// is pinned to (0: none) and its own webhook secret (zero: the global one).
type HookProject struct {
	Path   string
	ID     int64
	Secret Secret
}

// HookProjects lists the projects that have their own webhook secret or a
// pinned id, from projects[] and from apps' projectID.
func (c *Config) HookProjects() []HookProject {
	var out []HookProject
	index := map[string]int{}
	add := func(path string, id int64, secret Secret) {
		k := strings.ToLower(path)
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, HookProject{Path: path, ID: id, Secret: secret})
			return
		}
		if out[i].ID == 0 {
			out[i].ID = id
		}
	}
	for _, p := range c.Projects {
		if p.ID != 0 || !p.WebhookSecret.IsZero() {
			add(p.Path, p.ID, p.WebhookSecret)
		}
	}
	for _, a := range c.Apps {
		if a.ProjectID != 0 {
			add(a.Project, a.ProjectID, Secret{})
		}
	}
	return out
}

// ProjectID is the GitLab id path is pinned to, by projects[].id or an
// app's projectID.
func (c *Config) ProjectID(path string) (int64, bool) {
	for _, p := range c.HookProjects() {
		if strings.EqualFold(p.Path, path) && p.ID != 0 {
			return p.ID, true
		}
	}
	return 0, false
}

// validateHooks checks the pins and the per-project secrets: one id per
// path and one path per id, and no secret shared, since a shared secret
// would let one project's hooks sign for another's.
func (c *Config) validateHooks(v *validator) {
	pinned := map[string]pin{} // lower-case path -> its first pin
	byID := map[int64]pin{}
	check := func(where []any, path string, id int64) {
		if id < 0 {
			v.failf(where, "%d is not a GitLab project id (a positive number)", id)
			return
		}
		if id == 0 {
			return
		}
		if p, ok := pinned[strings.ToLower(path)]; ok && p.id != id {
			v.failf(where, "project %s is pinned to id %d at %s; one project has one id", path, p.id, pathString(p.at))
		}
		if p, ok := byID[id]; ok && !strings.EqualFold(p.path, path) {
			v.failf(where, "id %d is project %s's (%s); one id names one project", id, p.path, pathString(p.at))
		}
		if _, ok := pinned[strings.ToLower(path)]; !ok {
			pinned[strings.ToLower(path)] = pin{path: path, id: id, at: where}
		}
		if _, ok := byID[id]; !ok {
			byID[id] = pin{path: path, id: id, at: where}
		}
	}
	for i, p := range c.Projects {
		check([]any{"projects", i, "id"}, p.Path, p.ID)
	}
	for i, a := range c.Apps {
		check([]any{"apps", i, "projectID"}, a.Project, a.ProjectID)
	}
	c.validateHookSecrets(v)
}

type pin struct {
	path string
	id   int64
	at   []any
}

func (c *Config) validateHookSecrets(v *validator) {
	for i, p := range c.Projects {
		if p.WebhookSecret.IsZero() {
			continue
		}
		where := []any{"projects", i, "webhookSecret"}
		if same(p.WebhookSecret, c.GitLab.WebhookSecret) {
			v.failf(where, "is gitlab.webhookSecret; a project's own secret must be its own")
		}
		for j := range i {
			if same(p.WebhookSecret, c.Projects[j].WebhookSecret) {
				v.failf(where, "is projects[%d]'s (%s) too; with one secret each project could sign the other's hooks", j, c.Projects[j].Path)
			}
		}
	}
}

func same(a, b Secret) bool {
	return subtle.ConstantTimeCompare([]byte(a.Value()), []byte(b.Value())) == 1
}

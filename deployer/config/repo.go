package config

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// RepoFile is the per-repository config's path at the repository's root.
const RepoFile = ".shipbot.yaml"

// Project is what shipbot's config lets one GitLab project's .shipbot.yaml
// declare, as Atlantis's repos[].allowed_overrides: shipbot's config keeps
// the environments, clusters, people and policy; the repository its apps.
type Project struct {
	// Path is the project's path with namespace, e.g. shop/web.
	Path string `yaml:"path"`
	// ID is the project's GitLab id. Set, it pins the path: a webhook that
	// names the path with another id is refused, as a forged one would.
	ID int64 `yaml:"id"`
	// WebhookSecret, when set, is the only X-Gitlab-Token a webhook naming
	// this project (by path or by id) is admitted with; the global
	// gitlab.webhookSecret then no longer admits it.
	WebhookSecret Secret `yaml:"webhookSecret"`
	// Environments are the only environments the repository's apps may
	// list; none, and its .shipbot.yaml is not read at all.
	Environments []string `yaml:"environments"`
	// AllowedOverrides are the app keys the repository may set, besides
	// name and environments: e.g. source, params, params.replicas, release.
	AllowedOverrides []string `yaml:"allowedOverrides"`
	// Apps are the app names the repository may declare; any name that
	// shipbot's config does not use when empty.
	Apps []string `yaml:"apps"`
	// ChartSources are the URL prefixes (https://host/path/ or
	// oci://host/path/) of the chart repositories and OCI registries that
	// the repository's remote charts may come from; none when empty, so a
	// repository allowed to set source makes shipbot download only from
	// where its operators said.
	ChartSources []string `yaml:"chartSources"`
}

// allowsChart reports whether a remote chart at location (a chart
// repository's URL, or an oci:// chart) is under one of the project's
// chart sources, on a path boundary: https://charts.example.com/team does
// not admit https://charts.example.com/team-b.
func (p Project) allowsChart(location string) bool {
	for _, prefix := range p.ChartSources {
		if location == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(location, strings.TrimSuffix(prefix, "/")+"/") {
			return true
		}
	}
	return false
}

// ociURL reports whether s is oci://host[/path].
func ociURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "oci" && u.Host != ""
}

// checkChart refuses a remote chart from outside the project's chart sources.
func (p Project) checkChart(v *validator, path []any, h *HelmSource) {
	if h == nil || !h.Remote() {
		return
	}
	key, location := "chart", h.Chart
	if h.Repository != "" {
		key, location = "repository", h.Repository
	}
	if p.allowsChart(location) {
		return
	}
	sources := "none: add the prefix under chartSources of projects[] for " + p.Path
	if len(p.ChartSources) > 0 {
		sources = strings.Join(p.ChartSources, ", ")
	}
	v.failf(at(path, "source", "helm", key), "%q is not under a chart source project %s may download from (%s)", location, p.Path, sources)
}

// Overridable are the keys allowedOverrides may name. A key allows what is
// under it: params allows params.replicas.
var Overridable = []string{
	"source", "params", "params.replicas", "params.ports", "params.env", "params.host", "params.config",
	"params.resources", "params.values", "release", "image", "registry", "trigger", "job", "rolloutTimeout",
}

// OpensRepo reports whether the project's .shipbot.yaml is read: an entry
// that lists no environments only pins the project or gives it a secret.
func (p Project) OpensRepo() bool { return len(p.Environments) > 0 }

// Project returns the projects[] entry of a project, if it has one.
func (c *Config) Project(path string) (Project, bool) {
	for _, p := range c.Projects {
		if strings.EqualFold(p.Path, path) {
			return p, true
		}
	}
	return Project{}, false
}

// ProjectsIn lists, sorted and once each, the projects that may deploy
// to env: those whose apps in shipbot.yaml list it, and those whose
// .shipbot.yaml may. A person's role on one of them decides what they may
// do to env.
func (c *Config) ProjectsIn(env string) []string {
	var out []string
	add := func(p string) {
		if !slices.ContainsFunc(out, func(q string) bool { return strings.EqualFold(p, q) }) {
			out = append(out, p)
		}
	}
	for _, a := range c.Apps {
		if _, ok := a.Environments[env]; ok {
			add(a.Project)
		}
	}
	for _, p := range c.Projects {
		if slices.Contains(p.Environments, env) {
			add(p.Path)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Config) validateProjects(v *validator, envs map[string]bool) {
	seen := map[string]bool{}
	central := map[string]bool{}
	for _, a := range c.Apps {
		central[a.Name] = true
	}
	for i, p := range c.Projects {
		path := []any{"projects", i}
		if strings.Count(p.Path, "/") < 1 || strings.HasPrefix(p.Path, "/") || strings.HasSuffix(p.Path, "/") {
			v.failf(at(path, "path"), "%q is not a GitLab project path such as group/app", p.Path)
		}
		if seen[strings.ToLower(p.Path)] {
			v.failf(at(path, "path"), "project %q is listed twice", p.Path)
		}
		seen[strings.ToLower(p.Path)] = true
		if !p.OpensRepo() && ((p.ID == 0 && p.WebhookSecret.IsZero()) || len(p.AllowedOverrides)+len(p.Apps) > 0) {
			v.failf(at(path, "environments"), "list the environments the repository's apps may deploy to")
		}
		for j, e := range p.Environments {
			if !envs[e] {
				v.failf(at(path, "environments", j), "unknown environment %q; define it under environments", e)
			}
		}
		for j, k := range p.AllowedOverrides {
			if !slices.Contains(Overridable, k) {
				v.failf(at(path, "allowedOverrides", j), "%q is not one of %s", k, strings.Join(Overridable, ", "))
			}
		}
		for j, src := range p.ChartSources {
			if !httpURL(src) && !ociURL(src) {
				v.failf(at(path, "chartSources", j), "%q is not an http(s):// chart repository or oci:// registry URL with a host", src)
			}
		}
		if len(p.ChartSources) > 0 && !slices.Contains(p.AllowedOverrides, "source") {
			v.failf(at(path, "chartSources"), "only a project whose allowedOverrides include source can name a chart")
		}
		for j, a := range p.Apps {
			for _, msg := range validation.IsDNS1123Label(a) {
				v.failf(at(path, "apps", j), "%q is not a valid name: %s", a, msg)
			}
			if central[a] {
				v.failf(at(path, "apps", j), "app %q is already declared under apps; a name names one app", a)
			}
		}
	}
}

// repoFile is the whole of a .shipbot.yaml.
type repoFile struct {
	Apps []App `yaml:"apps"`
}

// ParseRepo reads a project's .shipbot.yaml (data), checks it against the
// project's policy and validates its apps as shipbot's own config would.
// It returns the apps, their project set, or every problem at once, each an
// *Error naming the file, the line and what is wrong.
func (c *Config) ParseRepo(project string, data []byte) ([]App, error) {
	pol, ok := c.Project(project)
	if !ok || !pol.OpensRepo() {
		return nil, &Error{File: RepoFile, Msg: fmt.Sprintf("shipbot's config lets project %s declare no apps (add it under projects)", project)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: RepoFile, Msg: trimYAML(err.Error())}
	}
	if root.Kind == 0 {
		return nil, nil // an empty file declares nothing
	}
	var f repoFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlError(RepoFile, err)
	}
	v := &validator{file: RepoFile, root: &root}
	pol.check(v, &root)
	for i := range f.Apps {
		a := &f.Apps[i]
		c.setRepoDefaults(a, project)
		if a.Source.From == FromLocal {
			v.failf([]any{"apps", i, "source", "from"}, "a repository's apps read the repository only; shipbot's disk is not theirs to read")
		}
		pol.checkChart(v, []any{"apps", i}, a.Source.Helm)
	}
	envs, seen := map[string]bool{}, map[string]bool{}
	for _, e := range c.Environments {
		envs[e.Name] = true
	}
	for _, a := range c.Apps {
		seen[a.Name] = true
	}
	for i, a := range f.Apps {
		if seen[a.Name] && !slices.Contains(pol.Apps, a.Name) {
			v.failf([]any{"apps", i, "name"}, "app %q is declared by shipbot's config; choose another name", a.Name)
			continue
		}
		if len(pol.Apps) > 0 && !slices.Contains(pol.Apps, a.Name) {
			v.failf([]any{"apps", i, "name"}, "project %s may declare the apps %s, not %q", project, strings.Join(pol.Apps, ", "), a.Name)
		}
		a.validate(v, []any{"apps", i}, seen, envs)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return f.Apps, nil
}

// setRepoDefaults fills an app of a repository as Config.setDefaults fills
// its own: the project is the repository's, and paths are in it.
func (c *Config) setRepoDefaults(a *App, project string) {
	a.Project = project
	if a.Image == "" {
		a.Image = DefaultImage
	}
	if a.Trigger == "" {
		a.Trigger = TriggerPipeline
	}
	a.setSourceDefaults()
	if a.Source.From == "" {
		a.Source.From = FromRepo
	}
	if a.RolloutTimeout.Duration == 0 {
		a.RolloutTimeout.Duration = 5 * time.Minute
	}
	tagged := map[string]bool{}
	for _, e := range c.Environments {
		tagged[e.Name] = len(e.Refs.Tags) > 0
	}
	a.setReleaseDefaults(tagged)
}

// check refuses, at their lines, the environments and keys that the
// project's policy does not open to its repository.
func (p Project) check(v *validator, root *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	apps, _ := child(doc, "apps")
	if apps == nil || apps.Kind != yaml.SequenceNode {
		return
	}
	for i, app := range apps.Content {
		p.checkKeys(v, app, []any{"apps", i}, "")
		envs, _ := child(app, "environments")
		if envs == nil || envs.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(envs.Content); j += 2 {
			name := envs.Content[j].Value
			path := []any{"apps", i, "environments", name}
			if !slices.Contains(p.Environments, name) {
				v.failf(path, "environment %q is not open to project %s's %s (it may use %s)", name, p.Path, RepoFile, strings.Join(p.Environments, ", "))
				continue
			}
			p.checkKeys(v, envs.Content[j+1], path, "env")
		}
	}
}

// appKeys maps an app's keys, and an environment's, to the override that
// allows them; "" is always allowed, and a key absent here is a param.
var appKeys = map[string]string{
	"name": "", "environments": "", "project": "project", "projectID": "project", "source": "source", "template": "source",
	"templateDir": "source", "release": "release", "image": "image", "registry": "registry",
	"trigger": "trigger", "job": "job", "rolloutTimeout": "rolloutTimeout", "helm": "source",
}

// checkKeys refuses the keys of an app (or, with in "env", of one of its
// environments) that allowedOverrides does not allow.
func (p Project) checkKeys(v *validator, n *yaml.Node, path []any, in string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		key := n.Content[j].Value
		over, known := appKeys[key]
		switch {
		case key == "project", key == "projectID":
			v.failf(at(path, key), "a repository's apps belong to its own project; drop %s", key)
			continue
		case key == "params" && in == "":
			for _, pk := range mappingKeys(n.Content[j+1]) {
				p.allow(v, at(path, key, pk), "params."+pk)
			}
			continue
		case !known:
			over = "params." + key // an environment's params sit inline
		}
		if over != "" {
			p.allow(v, at(path, key), over)
		}
	}
}

func (p Project) allow(v *validator, path []any, key string) {
	for _, a := range p.AllowedOverrides {
		if key == a || strings.HasPrefix(key, a+".") {
			return
		}
	}
	allowed := "nothing beyond name and environments"
	if len(p.AllowedOverrides) > 0 {
		allowed = strings.Join(slices.Sorted(slices.Values(p.AllowedOverrides)), ", ")
	}
	v.failf(path, "project %s's %s may not set %s (allowedOverrides: %s)", p.Path, RepoFile, key, allowed)
}

func mappingKeys(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			out = append(out, n.Content[j].Value)
		}
	}
	return out
}

// WithApps is a copy of the config whose apps are its own and more; the
// copy shares everything else, which no one changes once loaded.
func (c *Config) WithApps(more []App) *Config {
	if len(more) == 0 {
		return c
	}
	cp := *c
	cp.Apps = append(slices.Clip(c.Apps), more...)
	return &cp
}

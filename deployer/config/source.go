package config

import (
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/templates"
)

// Source is where an app's manifests come from: exactly one kind. Paths are
// read from the local file system, relative to shipbot's working directory,
// or with From "repo" from the app's repository at the commit deployed.
type Source struct {
	// From says where paths are read: FromLocal (the default in shipbot's
	// own config) or FromRepo. A repository's .shipbot.yaml reads its own.
	From        string           `yaml:"from"`
	Template    string           `yaml:"template"`    // a built-in template
	TemplateDir string           `yaml:"templateDir"` // a folder of shipbot templates
	Helm        *HelmSource      `yaml:"helm"`
	Kustomize   *KustomizeSource `yaml:"kustomize"`
	Manifests   *ManifestsSource `yaml:"manifests"`
}

// HelmSource is a Helm chart, a folder or a remote chart, and its values.
type HelmSource struct {
	// Chart is the chart's folder; with Repository, the chart's name
	// there; or oci://host/path/name, a chart in an OCI registry.
	Chart string `yaml:"chart"`
	// Repository is a chart repository's http(s) URL, which serves index.yaml.
	Repository string `yaml:"repository"`
	// Version pins a remote chart's version.
	Version string `yaml:"version"`
	// PlainHTTP reaches an OCI registry without TLS (helm --plain-http).
	PlainHTTP   bool           `yaml:"plainHTTP"`
	ValuesFiles []string       `yaml:"valuesFiles"` // merged in order over the chart's values.yaml
	Values      map[string]any `yaml:"values"`      // merged over the files
	// ImageValues are the dotted value paths of the image's repository and
	// tag; image.repository and image.tag when empty.
	ImageValues HelmImageValues `yaml:"imageValues"`
	// ReplicasValue is the dotted value path of the replica count;
	// replicaCount when empty.
	ReplicasValue string `yaml:"replicasValue"`
}

// HelmImageValues name the values that get the pipeline's image.
type HelmImageValues struct {
	Repository string `yaml:"repository"`
	Tag        string `yaml:"tag"`
}

// KustomizeSource is a kustomization folder, a base or an overlay.
type KustomizeSource struct {
	Path string `yaml:"path"`
	// ImageName is the image name the kustomization's resources use; the
	// pipeline image's repository when empty.
	ImageName string `yaml:"imageName"`
}

// ManifestsSource is a folder of plain manifests.
type ManifestsSource struct {
	Path string `yaml:"path"`
	// ImageName is the image repository whose containers get the
	// pipeline's image; the pipeline image's own repository when empty.
	ImageName string `yaml:"imageName"`
}

// HelmOverride is what an environment adds to the app's Helm values.
type HelmOverride struct {
	ValuesFiles []string       `yaml:"valuesFiles"` // after the app's
	Values      map[string]any `yaml:"values"`      // deep-merged over the app's
}

// Where a source's paths are read.
const (
	FromLocal = "local"
	FromRepo  = "repo"
)

// Remote reports whether the chart is downloaded rather than read from files.
func (h HelmSource) Remote() bool {
	return h.Repository != "" || strings.HasPrefix(h.Chart, OCIPrefix)
}

// OCIPrefix starts a chart in an OCI registry.
const OCIPrefix = "oci://"

// FromRepo reports whether the source reads its paths from the app's repository.
func (s Source) FromRepo() bool { return s.From == FromRepo }

// Source kinds, as the keys under source.
const (
	SourceTemplate    = "template"
	SourceTemplateDir = "templateDir"
	SourceHelm        = "helm"
	SourceKustomize   = "kustomize"
	SourceManifests   = "manifests"
)

// kinds lists the kinds set, in the order of the keys.
func (s Source) kinds() []string {
	var out []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{SourceTemplate, s.Template != ""}, {SourceTemplateDir, s.TemplateDir != ""}, {SourceHelm, s.Helm != nil},
		{SourceKustomize, s.Kustomize != nil}, {SourceManifests, s.Manifests != nil},
	} {
		if k.set {
			out = append(out, k.name)
		}
	}
	return out
}

// Kind is the source's kind, or "" when it has none or several.
func (s Source) Kind() string {
	if k := s.kinds(); len(k) == 1 {
		return k[0]
	}
	return ""
}

// IsTemplate reports whether shipbot templates render the app, the only
// kind that reads the ports, env, host, config, resources and values params.
func (s Source) IsTemplate() bool {
	return s.Kind() == SourceTemplate || s.Kind() == SourceTemplateDir
}

// setSourceDefaults makes source the one place to read: the shorthand
// template or templateDir goes there, and an app with neither gets the
// built-in web-service.
func (a *App) setSourceDefaults() {
	if a.Source != nil {
		return
	}
	if a.Template == "" && a.TemplateDir == "" {
		a.Template = "web-service"
	}
	a.Source = &Source{Template: a.Template, TemplateDir: a.TemplateDir}
	a.shorthand = true
}

var sourceKinds = strings.Join([]string{SourceTemplate, SourceTemplateDir, SourceHelm, SourceKustomize, SourceManifests}, ", ")

// validateSource checks that the app has exactly one source, written one
// way, and what each kind requires.
func (a App) validateSource(v *validator, path []any) {
	src := at(path, "source")
	if a.shorthand {
		src = path // the keys sit on the app itself
	}
	switch kinds := a.Source.kinds(); {
	case !a.shorthand && (a.Template != "" || a.TemplateDir != ""):
		v.failf(at(path, "source"), "app %q sets source and the shorthand template/templateDir; keep one", a.Name)
		return
	case len(kinds) == 0:
		v.failf(src, "app %q has an empty source; give one of %s", a.Name, sourceKinds)
		return
	case len(kinds) > 1:
		v.failf(src, "app %q has a source of %d kinds (%s); give exactly one of %s", a.Name, len(kinds), strings.Join(kinds, ", "), sourceKinds)
		return
	}
	s := *a.Source
	if s.From != "" && s.From != FromLocal && s.From != FromRepo {
		v.failf(at(src, "from"), "%q is not one of %s, %s", s.From, FromLocal, FromRepo)
	}
	switch {
	case s.Template != "" && !slices.Contains(templates.BuiltinNames(), s.Template):
		v.failf(at(src, "template"), "no built-in template %q (have %s); use templateDir for your own", s.Template, strings.Join(templates.BuiltinNames(), ", "))
	case s.Helm != nil:
		s.Helm.validate(v, at(src, "helm"))
	case s.Kustomize != nil && s.Kustomize.Path == "":
		v.failf(at(src, "kustomize", "path"), "required: the kustomization's folder")
	case s.Manifests != nil && s.Manifests.Path == "":
		v.failf(at(src, "manifests", "path"), "required: the folder of manifests")
	}
	if s.FromRepo() {
		for _, p := range s.paths(src) {
			if !RepoPathValid(p.value) {
				v.failf(p.at, "%q is not a path in the repository: write it relative to the repository's root, without ..", p.value)
			}
		}
	}
}

// keyedPath is a path a source reads, and where the config gives it.
type keyedPath struct {
	at    []any
	value string
}

// paths lists the file paths the source names.
func (s Source) paths(src []any) []keyedPath {
	var out []keyedPath
	switch {
	case s.TemplateDir != "":
		out = append(out, keyedPath{at(src, "templateDir"), s.TemplateDir})
	case s.Helm != nil:
		if !s.Helm.Remote() {
			out = append(out, keyedPath{at(src, "helm", "chart"), s.Helm.Chart})
		}
		for i, f := range s.Helm.ValuesFiles {
			out = append(out, keyedPath{at(src, "helm", "valuesFiles", i), f})
		}
	case s.Kustomize != nil:
		out = append(out, keyedPath{at(src, "kustomize", "path"), s.Kustomize.Path})
	case s.Manifests != nil:
		out = append(out, keyedPath{at(src, "manifests", "path"), s.Manifests.Path})
	}
	return out
}

// RepoPathValid reports whether p names a path inside a repository: a
// relative path that stays under its root once cleaned.
func RepoPathValid(p string) bool {
	c := path.Clean(strings.TrimPrefix(p, "./"))
	return p != "" && fs.ValidPath(c) && !strings.HasPrefix(p, "/")
}

func (h *HelmSource) validate(v *validator, path []any) {
	oci := strings.HasPrefix(h.Chart, OCIPrefix)
	switch {
	case h.Chart == "":
		v.failf(at(path, "chart"), "required: the chart's folder, its name in repository, or oci://host/path/name")
	case oci && h.Repository != "":
		v.failf(at(path, "repository"), "an oci:// chart names its registry itself; drop repository")
	case h.Repository != "" && !httpURL(h.Repository):
		v.failf(at(path, "repository"), "%q is not an http(s) URL of a chart repository", h.Repository)
	case h.Remote() && h.Version == "":
		v.failf(at(path, "version"), "required for a remote chart: pin the version, so a deploy never picks up a chart nobody chose")
	case !h.Remote() && h.Version != "":
		v.failf(at(path, "version"), "only a remote chart (repository or oci://) has a version; a folder's is in its Chart.yaml")
	case h.PlainHTTP && !oci:
		v.failf(at(path, "plainHTTP"), "only for an oci:// chart")
	}
	validateFiles(v, at(path, "valuesFiles"), h.ValuesFiles)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func validateFiles(v *validator, path []any, files []string) {
	for i, f := range files {
		if strings.TrimSpace(f) == "" {
			v.failf(at(path, i), "empty file name")
		}
	}
}

// validateSourceParams refuses what the app's source would silently ignore:
// params only templates read, and Helm values for another kind.
func (a App) validateSourceParams(v *validator, path []any, p Params, helm *HelmOverride) {
	if helm != nil {
		if a.Source.Helm == nil {
			v.failf(at(path, "helm"), "app %q has no helm source to give values to", a.Name)
		} else {
			validateFiles(v, at(path, "helm", "valuesFiles"), helm.ValuesFiles)
		}
	}
	if a.Source.Kind() == "" || a.Source.IsTemplate() {
		return
	}
	for _, k := range []struct {
		key string
		set bool
	}{
		{"ports", len(p.Ports) > 0}, {"env", len(p.Env) > 0}, {"host", p.Host != ""}, {"config", len(p.Config) > 0},
		{"resources", p.Resources != Resources{}}, {"values", len(p.Values) > 0},
	} {
		switch {
		case k.set && k.key == "values" && a.Source.Helm != nil:
			v.failf(at(path, k.key), "helm values go under source.helm.values, or an environment's helm.values")
		case k.set:
			v.failf(at(path, k.key), "only templates read %s; with a %s source, set it there", k.key, a.Source.Kind())
		}
	}
}

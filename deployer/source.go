package deployer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/templates"
	"github.com/shipbot/shipbot/templates/source"
)

// LocalFiles is where sources read their files: the local file system, in
// which a config path, absolute or relative to the working directory, is
// found by localPath.
var LocalFiles fs.FS = os.DirFS("/")

// localPath turns a config path into a path of LocalFiles.
func localPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p // only a missing working directory fails: the read will say so
	}
	if rel := strings.TrimLeft(filepath.ToSlash(abs), "/"); rel != "" {
		return rel
	}
	return "."
}

// Sources renders apps from where their files are: shipbot's own disk, or
// the app's repository at the commit deployed; and Helm charts from chart
// repositories and OCI registries.
type Sources struct {
	// Repos reads repositories; nil fails every app whose source is from: repo.
	Repos *Repos
	// Charts downloads remote Helm charts; nil fails every app that has one.
	Charts *source.Charts
}

// AppSource is the source an app renders from in env: the app's, with the
// environment's Helm values files and values after the app's.
func (s Sources) AppSource(app config.App, env string) (source.Source, error) {
	src := app.Source
	if src == nil {
		return nil, fmt.Errorf("app %s: no source", app.Name)
	}
	p := pathIn(src.FromRepo())
	switch src.Kind() {
	case config.SourceTemplate:
		return source.Template{Builtin: src.Template}, nil
	case config.SourceTemplateDir:
		return source.Template{Dir: p(src.TemplateDir)}, nil
	case config.SourceHelm:
		return s.helmSource(*src.Helm, app.Environments[env].Helm, p), nil
	case config.SourceKustomize:
		return source.Kustomize{Path: p(src.Kustomize.Path), ImageName: src.Kustomize.ImageName}, nil
	case config.SourceManifests:
		return source.Manifests{Path: p(src.Manifests.Path), ImageName: src.Manifests.ImageName}, nil
	}
	return nil, fmt.Errorf("app %s: a source needs exactly one kind", app.Name)
}

// pathIn turns a config path into one of the files a source reads.
func pathIn(repo bool) func(string) string {
	if repo {
		return func(p string) string { return path.Clean(strings.TrimPrefix(p, "./")) }
	}
	return localPath
}

func (s Sources) helmSource(h config.HelmSource, env *config.HelmOverride, p func(string) string) source.Helm {
	out := source.Helm{
		ImageValues:   source.ImageValues{Repository: h.ImageValues.Repository, Tag: h.ImageValues.Tag},
		ReplicasValue: h.ReplicasValue,
	}
	if h.Remote() {
		out.Remote = &source.RemoteChart{Repository: h.Repository, Name: h.Chart, Version: h.Version, PlainHTTP: h.PlainHTTP}
		out.Charts = s.Charts
	} else {
		out.Chart = p(h.Chart)
	}
	files := h.ValuesFiles
	values := []map[string]any{h.Values}
	if env != nil {
		files = append(files[:len(files):len(files)], env.ValuesFiles...)
		values = append(values, env.Values)
	}
	for _, f := range files {
		out.ValuesFiles = append(out.ValuesFiles, p(f))
	}
	for _, v := range values {
		if len(v) > 0 {
			out.Values = append(out.Values, v)
		}
	}
	return out
}

// Files are the files an app's source reads for a build of commit sha of
// project: the repository at sha, or the local disk.
func (s Sources) Files(ctx context.Context, app config.App, project, sha string) (fs.FS, error) {
	if app.Source != nil && app.Source.FromRepo() {
		return s.Repos.Files(ctx, project, sha)
	}
	return LocalFiles, nil
}

// CheckSource reads an app's local source files for every environment it
// deploys to, so that a missing chart or folder fails at start, not at a
// deploy. A source from the repository has nothing to read before a build.
func (s Sources) CheckSource(app config.App) error {
	if app.Source != nil && app.Source.FromRepo() {
		return nil
	}
	for env := range app.Environments {
		src, err := s.AppSource(app, env)
		if err != nil {
			return err
		}
		if err := src.Check(LocalFiles); err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
	}
	return nil
}

// RenderApp renders an app's source for one deployment, reading files
// from files (see Files), stamped with its traceability annotations;
// `shipbot render` uses it without an engine.
func (s Sources) RenderApp(ctx context.Context, files fs.FS, app config.App, p config.Params, d store.Deployment) ([]templates.Object, error) {
	src, err := s.AppSource(app, d.Environment)
	if err != nil {
		return nil, err
	}
	objs, err := src.Render(ctx, source.Input{Files: files, Params: TemplateParams(app, p, d), Replicas: p.Replicas})
	if err != nil {
		return nil, fmt.Errorf("render app %s for %s: %w", app.Name, d.Environment, err)
	}
	for _, o := range objs {
		stamp(o.Obj, d)
	}
	return objs, nil
}

// ReleaseRenderer renders a staged release's objects from its app's source,
// as configured now, for the release's environment.
type ReleaseRenderer struct {
	Config  config.Current
	Sources Sources
}

var _ release.Renderer = ReleaseRenderer{}

// Render renders the release's recorded params with rev's image and the
// release's replicas, and stamps the objects and their pod templates with
// where they come from, as a plain deploy stamps its objects.
func (rr ReleaseRenderer) Render(ctx context.Context, r *release.Release, rev release.Revision) ([]*unstructured.Unstructured, error) {
	// The app as its release's commit declares it, for both revisions.
	app, err := Apps(rr).App(ctx, r.App, r.Project, r.To.SHA)
	if errors.Is(err, ErrRepoFiles) {
		return nil, err // GitLab may answer on the next step
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", release.ErrInvalid, err)
	}
	src, err := rr.Sources.AppSource(app, r.Environment)
	if err != nil {
		return nil, err
	}
	// Each revision renders from its own commit: the version a release
	// moves away from keeps the chart it was released with.
	files, err := rr.Sources.Files(ctx, app, r.Project, rev.SHA)
	if err != nil {
		return nil, err
	}
	p := r.Params
	p.App, p.Project, p.Environment, p.Namespace = r.App, r.Project, r.Environment, r.Namespace
	p.Image, p.Replicas = rev.Image, r.Replicas
	objs, err := src.Render(ctx, source.Input{Files: files, Params: p, Replicas: &r.Replicas})
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", r.App, rev.Name, err)
	}
	a := releaseAnnotations(r, rev)
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		annotate(o.Obj, a)
		templates.AnnotatePodTemplate(o.Obj, a)
		out[i] = o.Obj
	}
	return out, nil
}

// releaseAnnotations are a plain deploy's traceability annotations for one
// revision of a release, the release's id standing for the deployment's. The build's pipeline, job and user are To's: From
// was built by an earlier pipeline, so its objects name only its commit.
func releaseAnnotations(r *release.Release, rev release.Revision) map[string]string {
	a := map[string]string{
		release.AnnotationRelease: r.ID, AnnotationDeployment: r.ID, AnnotationProject: r.Project, AnnotationEnvironment: r.Environment,
		AnnotationRef: rev.Ref, AnnotationSHA: rev.SHA,
	}
	if rev == r.To {
		a[AnnotationPipeline] = strconv.FormatInt(r.PipelineID, 10)
		a[AnnotationJob] = strconv.FormatInt(r.JobID, 10)
		a[AnnotationUser] = r.TriggeredBy
	}
	return a
}

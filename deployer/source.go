package deployer

import (
	"context"
	"fmt"
	"io/fs"
	"os"
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

// AppSource is the source an app renders from in env: the app's, with the
// environment's Helm values files and values after the app's.
func AppSource(app config.App, env string) (source.Source, error) {
	s := app.Source
	if s == nil {
		return nil, fmt.Errorf("app %s: no source", app.Name)
	}
	switch s.Kind() {
	case config.SourceTemplate:
		return source.Template{Builtin: s.Template}, nil
	case config.SourceTemplateDir:
		return source.Template{Dir: localPath(s.TemplateDir)}, nil
	case config.SourceHelm:
		return helmSource(*s.Helm, app.Environments[env].Helm), nil
	case config.SourceKustomize:
		return source.Kustomize{Path: localPath(s.Kustomize.Path), ImageName: s.Kustomize.ImageName}, nil
	case config.SourceManifests:
		return source.Manifests{Path: localPath(s.Manifests.Path), ImageName: s.Manifests.ImageName}, nil
	}
	return nil, fmt.Errorf("app %s: a source needs exactly one kind", app.Name)
}

func helmSource(h config.HelmSource, env *config.HelmOverride) source.Helm {
	out := source.Helm{
		Chart:         localPath(h.Chart),
		ImageValues:   source.ImageValues{Repository: h.ImageValues.Repository, Tag: h.ImageValues.Tag},
		ReplicasValue: h.ReplicasValue,
	}
	files := h.ValuesFiles
	values := []map[string]any{h.Values}
	if env != nil {
		files = append(files[:len(files):len(files)], env.ValuesFiles...)
		values = append(values, env.Values)
	}
	for _, f := range files {
		out.ValuesFiles = append(out.ValuesFiles, localPath(f))
	}
	for _, v := range values {
		if len(v) > 0 {
			out.Values = append(out.Values, v)
		}
	}
	return out
}

// CheckSource reads an app's source files for every environment it deploys
// to, so that a missing chart or folder fails at start, not at a deploy.
func CheckSource(app config.App) error {
	for env := range app.Environments {
		s, err := AppSource(app, env)
		if err != nil {
			return err
		}
		if err := s.Check(LocalFiles); err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
	}
	return nil
}

// RenderApp renders an app's source for one deployment, stamped with its
// traceability annotations; `shipbot render` uses it without an engine.
func RenderApp(ctx context.Context, app config.App, p config.Params, d store.Deployment) ([]templates.Object, error) {
	src, err := AppSource(app, d.Environment)
	if err != nil {
		return nil, err
	}
	objs, err := src.Render(ctx, source.Input{Files: LocalFiles, Params: TemplateParams(app, p, d), Replicas: p.Replicas})
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
type ReleaseRenderer struct{ Config *config.Config }

var _ release.Renderer = ReleaseRenderer{}

// Render renders the release's recorded params with rev's image and the
// release's replicas, and stamps the objects and their pod templates with
// where they come from, as a plain deploy stamps its objects.
func (rr ReleaseRenderer) Render(ctx context.Context, r *release.Release, rev release.Revision) ([]*unstructured.Unstructured, error) {
	app, ok := rr.Config.App(r.App)
	if !ok {
		return nil, fmt.Errorf("app %s is no longer configured: %w", r.App, release.ErrInvalid)
	}
	src, err := AppSource(app, r.Environment)
	if err != nil {
		return nil, err
	}
	p := r.Params
	p.App, p.Project, p.Environment, p.Namespace = r.App, r.Project, r.Environment, r.Namespace
	p.Image, p.Replicas = rev.Image, r.Replicas
	objs, err := src.Render(ctx, source.Input{Files: LocalFiles, Params: p, Replicas: &r.Replicas})
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

package deployer

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/store"
)

// ClusterDiff is what deploying an app would change in one cluster of an
// environment, as the apiserver's dry run says.
type ClusterDiff struct {
	App, Environment, Cluster string
	Objects                   []kube.ObjectDiff
}

// Count is how many objects would see change c.
func (d ClusterDiff) Count(c kube.Change) int {
	n := 0
	for _, o := range d.Objects {
		if o.Change == c {
			n++
		}
	}
	return n
}

// DiffApp renders app for a deployment to d.Environment from files, and
// asks each of the environment's clusters what applying it would change.
// It applies nothing.
func (s Sources) DiffApp(ctx context.Context, cfg *config.Config, clusters map[string]*kube.Client, files fs.FS, app config.App, d store.Deployment) ([]ClusterDiff, error) {
	env, ok := cfg.Environment(d.Environment)
	if !ok {
		return nil, fmt.Errorf("no environment %q", d.Environment)
	}
	p, ok := app.ParamsFor(env.Name)
	if !ok {
		return nil, fmt.Errorf("app %s does not deploy to environment %s", app.Name, env.Name)
	}
	d.Namespace = env.Namespace
	rendered, err := s.RenderApp(ctx, files, app, p, d)
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, len(rendered))
	for i, o := range rendered {
		objs[i] = o.Obj
	}
	var out []ClusterDiff
	for _, name := range env.Clusters {
		c := clusters[name]
		if c == nil {
			return nil, fmt.Errorf("environment %s: no client for cluster %s", env.Name, name)
		}
		// Who deploys and from which pipeline changes at every deploy; the
		// commit, the ref and the content are what a reviewer asks about.
		diffs, err := c.DiffApply(ctx, objs, AnnotationDeployment, AnnotationPipeline, AnnotationJob, AnnotationUser)
		if err != nil {
			return nil, err
		}
		out = append(out, ClusterDiff{App: app.Name, Environment: env.Name, Cluster: name, Objects: diffs})
	}
	return out, nil
}

// PlanText describes diffs for people, in Markdown: per app, environment
// and cluster the counts, then each changed object's diff, collapsed.
// Secrets show only whether they change. It is the MR comment's and
// `shipbot plan`'s text.
func PlanText(diffs []ClusterDiff) string {
	var b strings.Builder
	for _, d := range diffs {
		fmt.Fprintf(&b, "**%s** in **%s** (cluster %s): %d created, %d changed, %d unchanged\n",
			d.App, d.Environment, d.Cluster, d.Count(kube.Created), d.Count(kube.Changed), d.Count(kube.Unchanged))
		for _, o := range d.Objects {
			if o.Change == kube.Unchanged {
				continue
			}
			what := fmt.Sprintf("%s %s/%s %s", o.Kind, o.Namespace, o.Name, o.Change)
			if o.Diff == "" {
				fmt.Fprintf(&b, "- %s\n", what)
				continue
			}
			fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n```diff\n%s```\n</details>\n", what, strings.ReplaceAll(o.Diff, "```", "'''"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// MergePlanner works out what merging a merge request would deploy: for
// each app of the project at the head's commit (shipbot.yaml's and its
// .shipbot.yaml's), each environment whose branch rules match the target
// branch, and each of its clusters, the apiserver's dry-run diff.
type MergePlanner struct {
	Apps     Apps
	Clusters map[string]*kube.Client
}

// Plan plans a merge of commit sha of project into target. Tag rules are
// not asked: a merge deploys by branch, and a tag comes later.
func (m MergePlanner) Plan(ctx context.Context, project, sha, target string) ([]ClusterDiff, error) {
	cfg, err := m.Apps.At(ctx, project, sha)
	if err != nil {
		return nil, err
	}
	var out []ClusterDiff
	for _, app := range cfg.Apps {
		if app.Project != project {
			continue
		}
		for _, env := range cfg.Environments {
			if _, ok := app.Environments[env.Name]; !ok || !env.MatchBranch(target) {
				continue
			}
			diffs, err := m.planApp(ctx, cfg, app, env, sha, target)
			if err != nil {
				return nil, fmt.Errorf("app %s in %s: %w", app.Name, env.Name, err)
			}
			out = append(out, diffs...)
		}
	}
	return out, nil
}

func (m MergePlanner) planApp(ctx context.Context, cfg *config.Config, app config.App, env config.Environment, sha, target string) ([]ClusterDiff, error) {
	files, err := m.Apps.Sources.Files(ctx, app, app.Project, sha)
	if err != nil {
		return nil, err
	}
	image, err := app.ImageFor(config.ImageData{Project: app.Project, App: app.Name, SHA: sha, ShortSHA: short(sha), Ref: target, Environment: env.Name})
	if err != nil {
		return nil, err
	}
	d := store.Deployment{ID: "plan", App: app.Name, Project: app.Project, Environment: env.Name, Ref: target, SHA: sha, Image: image, User: "plan"}
	return m.Apps.Sources.DiffApp(ctx, cfg, m.Clusters, files, app, d)
}

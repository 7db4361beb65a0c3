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
		diffs, err := c.DiffApply(ctx, objs)
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

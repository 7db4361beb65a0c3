// Package source renders an app's objects from where its manifests come
// from: a folder of shipbot templates (or a built-in one), a Helm chart, a
// Kustomize overlay or a folder of plain manifests. Each kind renders with
// its own library; shipbot only puts the pipeline's image, and when asked
// the replica count, into what it renders:
//
//   - Template: the template sees them as .Image and .Replicas.
//   - Helm: values at Helm.ImageValues (image.repository and image.tag by
//     default) and Helm.ReplicasValue (replicaCount), set over every other
//     value as `helm --set-string` and `--set` would.
//   - Kustomize: an images entry for Kustomize.ImageName, applied by
//     Kustomize's own image transformer in a kustomization that wraps the
//     app's; replicas go on the workload.
//   - Manifests: every container whose image's repository is
//     Manifests.ImageName gets the image; replicas go on the workload.
//
// The workload is the Deployment annotated shipbot.io/workload: primary, or
// the only Deployment (templates.Workload).
//
// Files come from an fs.FS, so that the same code reads a local folder now
// and a repository at a commit later.
package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/pkg/util"

	"github.com/shipbot/shipbot/templates"
)

// Source renders an app's objects.
type Source interface {
	// Render renders the objects to apply for in, in apply order, each
	// namespaced one in in.Params.Namespace unless it names its own.
	Render(ctx context.Context, in Input) ([]templates.Object, error)
	// Check reads what Render reads from files and reports what would make
	// every render fail, such as a missing chart, so that it shows at start.
	Check(files fs.FS) error
}

// Input is what one render needs.
type Input struct {
	// Files holds the paths a source names, relative to its root, as fs.FS
	// paths: a local folder, or a repository at a commit.
	Files fs.FS
	// Params are what templates see. Every kind uses App (Helm's release
	// name), Namespace and Image.
	Params templates.Params
	// Replicas, when set, is the workload's replica count; nil leaves what
	// the source says (for templates, Params.Replicas).
	Replicas *int32
}

// ErrInvalid marks a source or input that no render can succeed with.
var ErrInvalid = errors.New("invalid source")

// validate checks what every kind uses of in.
func (in Input) validate() error {
	if in.Files == nil {
		return fmt.Errorf("%w: no files to read", ErrInvalid)
	}
	return in.Params.Validate()
}

// repository is an image reference without its tag and digest, as Kustomize
// matches images.
func repository(image string) string {
	name, _, _ := util.SplitImageName(image)
	return name
}

// unwrap lists the objects of a render.
func unwrap(objs []templates.Object) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Obj
	}
	return out
}

// setReplicas puts n on the workload when n is set.
func setReplicas(objs []templates.Object, n *int32) error {
	if n == nil {
		return nil
	}
	w, err := templates.Workload(unwrap(objs))
	if err != nil {
		return fmt.Errorf("set replicas: %w", err)
	}
	return unstructured.SetNestedField(w.Object, int64(*n), "spec", "replicas")
}

// requireImage fails a render in which no container runs image: shipbot
// would report a deploy of a build that it did not deploy.
func requireImage(objs []templates.Object, image, how string) error {
	for _, o := range objs {
		found := false
		eachContainer(o.Obj.Object, func(c map[string]any) {
			found = found || c["image"] == image
		})
		if found {
			return nil
		}
	}
	return fmt.Errorf("%w: no container runs image %s after setting it %s", ErrInvalid, image, how)
}

// eachContainer calls f with every container of an object, in any pod
// spec it holds (a Deployment's, a CronJob's, a Pod's): every list under a
// containers or initContainers key.
func eachContainer(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if list, ok := child.([]any); ok && (k == "containers" || k == "initContainers") {
				for _, c := range list {
					if c, ok := c.(map[string]any); ok {
						f(c)
					}
				}
				continue
			}
			eachContainer(child, f)
		}
	case []any:
		for _, child := range v {
			eachContainer(child, f)
		}
	}
}

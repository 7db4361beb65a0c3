package source

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"path"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/shipbot/shipbot/templates"
)

// Kustomize is a kustomization folder (a base or an overlay), built as
// `kustomize build` builds it: load restricted to the root, no plugins.
type Kustomize struct {
	Path string // the kustomization's folder in Input.Files
	// ImageName is the image name, as the kustomization's resources write
	// it, that gets the pipeline's image; the image's own repository when
	// empty.
	ImageName string
}

var _ Source = Kustomize{}

// wrapperDir holds the kustomization that shipbot wraps around the app's
// to set the image. Input.Files are at the root of the in-memory file
// system, so the wrapper's path must not be one of theirs.
const wrapperDir = "/.shipbot-kustomize"

// Render builds the kustomization wrapped in one that sets the image, then
// sets the replicas when given.
func (k Kustomize) Render(ctx context.Context, in Input) ([]templates.Object, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	fsys := newLazyFS(in.Files)
	if fsys.inSource(wrapperDir) {
		return nil, fmt.Errorf("kustomize %s: %w: the files have a %s, which shipbot needs for itself", k.Path, ErrInvalid, wrapperDir)
	}
	img, want := k.image(in.Params.Image)
	wrapper := types.Kustomization{
		TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources: []string{path.Join("..", k.Path)},
		Images:    []types.Image{img},
	}
	b, err := yaml.Marshal(wrapper)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
	}
	if err := fsys.WriteFile(path.Join(wrapperDir, "kustomization.yaml"), b); err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, wrapperDir)
	if err == nil {
		err = fsys.err
	}
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
	}
	dec := &templates.Decoder{Namespace: in.Params.Namespace, Rendered: true}
	var objs []templates.Object
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", k.Path, r.CurId(), err)
		}
		o, err := dec.Decode(k.Path, string(y))
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
		}
		objs = append(objs, o...)
	}
	if err := requireImage(objs, want, "with kustomize images name "+img.Name); err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
	}
	if err := setReplicas(objs, in.Replicas); err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", k.Path, err)
	}
	return objs, nil
}

// image is the images entry for the pipeline's image, and the image
// reference Kustomize writes with it: with a digest it drops the tag.
func (k Kustomize) image(ref string) (types.Image, string) {
	repo, tag, digest := util.SplitImageName(ref)
	img := types.Image{Name: cmp.Or(k.ImageName, repo), NewName: repo, NewTag: tag}
	want := repo + ":" + tag
	switch {
	case digest != "":
		img.NewTag, img.Digest, want = "", digest, repo+"@"+digest
	case tag == "":
		want = repo
	}
	return img, want
}

// Check makes sure Path is a folder with a kustomization file.
func (k Kustomize) Check(files fs.FS) error {
	if files == nil {
		return fmt.Errorf("kustomize %s: %w: no files to read", k.Path, ErrInvalid)
	}
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := fs.Stat(files, path.Join(k.Path, name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("kustomize %s: %w: no kustomization.yaml in the folder", k.Path, ErrInvalid)
}

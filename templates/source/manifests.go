package source

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/shipbot/shipbot/templates"
)

// Manifests is a folder of plain Kubernetes manifests: every *.yaml, *.yml
// and *.json file under Path, in its subfolders too (hidden ones left out),
// each possibly holding several documents, applied in path order.
type Manifests struct {
	Path string // the folder in Input.Files
	// ImageName is the image repository, as the manifests write it, whose
	// containers get the pipeline's image; the image's own repository when
	// empty.
	ImageName string
}

var _ Source = Manifests{}

// Render decodes the files, sets the image and, when given, the replicas.
func (m Manifests) Render(ctx context.Context, in Input) ([]templates.Object, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	files, err := m.files(in.Files)
	if err != nil {
		return nil, err
	}
	dec := &templates.Decoder{Namespace: in.Params.Namespace}
	var objs []templates.Object
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(in.Files, name)
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		fileObjs, err := dec.Decode(relative(m.Path, name), string(b))
		if err != nil {
			return nil, fmt.Errorf("manifests %s: %w", m.Path, err)
		}
		objs = append(objs, fileObjs...)
	}
	name := m.ImageName
	if name == "" {
		name = repository(in.Params.Image)
	}
	for _, o := range objs {
		eachContainer(o.Obj.Object, func(c map[string]any) {
			if img, ok := c["image"].(string); ok && repository(img) == name {
				c["image"] = in.Params.Image
			}
		})
	}
	if err := requireImage(objs, in.Params.Image, "on containers of image "+name); err != nil {
		return nil, fmt.Errorf("manifests %s: %w", m.Path, err)
	}
	if err := setReplicas(objs, in.Replicas); err != nil {
		return nil, fmt.Errorf("manifests %s: %w", m.Path, err)
	}
	return objs, nil
}

// Check makes sure the folder has a manifest.
func (m Manifests) Check(files fs.FS) error {
	_, err := m.files(files)
	return err
}

// relative names a file in Input.Files by its path under dir.
func relative(dir, name string) string {
	if dir == "." {
		return name
	}
	return strings.TrimPrefix(name, dir+"/")
}

// files lists the manifest files under Path in lexical order, leaving out
// hidden files and folders such as .git.
func (m Manifests) files(fsys fs.FS) ([]string, error) {
	if fsys == nil {
		return nil, fmt.Errorf("manifests %s: %w: no files to read", m.Path, ErrInvalid)
	}
	var out []string
	err := fs.WalkDir(fsys, m.Path, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != m.Path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch path.Ext(name) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				out = append(out, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifests %s: %w", m.Path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifests %s: %w: no *.yaml, *.yml or *.json file", m.Path, ErrInvalid)
	}
	return out, nil
}

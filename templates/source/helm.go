package source

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
	hrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	"sigs.k8s.io/kustomize/api/pkg/util"
	"sigs.k8s.io/yaml"

	"github.com/shipbot/shipbot/templates"
)

// Helm is a chart folder, rendered as `helm template` renders it: release
// name Input.Params.App, namespace Input.Params.Namespace, the default
// capabilities of Helm's client-only mode, no hooks and no crds/ folder.
type Helm struct {
	Chart string // the chart's folder in Input.Files; dependencies must be in its charts/
	// Remote, when set, is where the chart comes from instead of Chart;
	// Charts downloads it.
	Remote *RemoteChart
	Charts *Charts
	// ValuesFiles are values files in Input.Files, merged in order over the
	// chart's values.yaml, as `helm -f` does.
	ValuesFiles []string
	// Values are merged in order over the files, later ones winning: the
	// app's values, then an environment's.
	Values []map[string]any
	// ImageValues are where the image goes; image.repository and image.tag
	// when empty.
	ImageValues ImageValues
	// ReplicasValue is where Input.Replicas goes, when set; replicaCount
	// when empty.
	ReplicasValue string
}

// ImageValues are the dotted value paths that get the image's repository
// and its tag. An image with a digest gets "tag@digest" as its tag.
type ImageValues struct {
	Repository string
	Tag        string
}

var _ Source = Helm{}

// Defaults of Helm's value paths, as `helm create` lays out a chart.
const (
	DefaultImageRepositoryValue = "image.repository"
	DefaultImageTagValue        = "image.tag"
	DefaultReplicasValue        = "replicaCount"
)

// Render renders the chart with its values and shipbot's image and replicas.
func (h Helm) Render(ctx context.Context, in Input) ([]templates.Object, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	chrt, err := h.chart(ctx, in.Files)
	if err != nil {
		return nil, err
	}
	vals, err := h.values(in)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	inst.DryRunStrategy = action.DryRunClient // helm template: no cluster
	inst.ReleaseName = in.Params.App
	inst.Namespace = in.Params.Namespace
	rel, err := inst.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.name(), err)
	}
	r, ok := rel.(*hrelease.Release)
	if !ok {
		return nil, fmt.Errorf("helm chart %s: unexpected release type %T", h.name(), rel)
	}
	objs, err := decodeManifest(r.Manifest, in.Params.Namespace)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.name(), err)
	}
	how := fmt.Sprintf("in values %s and %s", h.imageValues().Repository, h.imageValues().Tag)
	if err := requireImage(objs, in.Params.Image, how); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.name(), err)
	}
	return objs, nil
}

// Check loads the chart and reads the values files. A remote chart is not
// downloaded: Check reads files only.
func (h Helm) Check(files fs.FS) error {
	if h.Remote == nil {
		if _, err := h.load(files); err != nil {
			return err
		}
	}
	_, err := h.fileValues(files)
	return err
}

// chart loads the remote chart, or the folder's.
func (h Helm) chart(ctx context.Context, files fs.FS) (*chart.Chart, error) {
	if h.Remote == nil {
		return h.load(files)
	}
	chrt, err := h.Charts.Load(ctx, *h.Remote)
	if err != nil {
		return nil, err
	}
	if err := checkDependencies(chrt); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.Remote, err)
	}
	return chrt, nil
}

// name is how errors name the chart.
func (h Helm) name() string {
	if h.Remote != nil {
		return h.Remote.String()
	}
	return h.Chart
}

func (h Helm) imageValues() ImageValues {
	v := h.ImageValues
	if v.Repository == "" {
		v.Repository = DefaultImageRepositoryValue
	}
	if v.Tag == "" {
		v.Tag = DefaultImageTagValue
	}
	return v
}

// values merges the values files, the values, then shipbot's settings.
func (h Helm) values(in Input) (map[string]any, error) {
	vals, err := h.fileValues(in.Files)
	if err != nil {
		return nil, err
	}
	for _, layer := range h.Values {
		// A round trip through YAML gives the layer Helm's own value types,
		// and a copy that the settings below can change.
		b, err := yaml.Marshal(layer)
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: values: %w", h.name(), err)
		}
		m, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: values: %w", h.name(), err)
		}
		vals = loader.MergeMaps(vals, m)
	}
	repo, tag, digest := util.SplitImageName(in.Params.Image)
	if digest != "" {
		tag += "@" + digest
	}
	iv := h.imageValues()
	// As --set-string: a tag such as 1.10 stays a string.
	set := []string{iv.Repository + "=" + escapeValue(repo), iv.Tag + "=" + escapeValue(tag)}
	for _, kv := range set {
		if err := strvals.ParseIntoString(kv, vals); err != nil {
			return nil, fmt.Errorf("helm chart %s: set %s: %w", h.name(), kv, err)
		}
	}
	if in.Replicas != nil {
		kv := cmp.Or(h.ReplicasValue, DefaultReplicasValue) + "=" + strconv.Itoa(int(*in.Replicas))
		if err := strvals.ParseInto(kv, vals); err != nil { // as --set: a number
			return nil, fmt.Errorf("helm chart %s: set %s: %w", h.name(), kv, err)
		}
	}
	return vals, nil
}

// escapeValue keeps strvals from reading a comma or backslash in a value as syntax.
func escapeValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, ",", `\,`).Replace(s)
}

// fileValues merges the values files in order.
func (h Helm) fileValues(files fs.FS) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range h.ValuesFiles {
		b, err := fs.ReadFile(files, f)
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: values file: %w", h.name(), err)
		}
		m, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: values file %s: %w", h.name(), f, err)
		}
		vals = loader.MergeMaps(vals, m)
	}
	return vals, nil
}

// utf8BOM is dropped from chart files, as Helm's directory loader does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// load reads the chart's files as Helm's directory loader does, honouring
// .helmignore, and checks that its dependencies are in charts/.
func (h Helm) load(files fs.FS) (*chart.Chart, error) {
	if files == nil {
		return nil, fmt.Errorf("helm chart %s: %w: no files to read", h.Chart, ErrInvalid)
	}
	rules := ignore.Empty()
	if b, err := fs.ReadFile(files, path.Join(h.Chart, ignore.HelmIgnore)); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("helm chart %s: %s: %w", h.Chart, ignore.HelmIgnore, err)
		}
	}
	rules.AddDefaults()
	var buf []*archive.BufferedFile
	var size int64
	err := fs.WalkDir(files, h.Chart, func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == h.Chart {
			return err
		}
		n := relative(h.Chart, name)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && rules.Ignore(n, fi):
			return fs.SkipDir
		case d.IsDir() || rules.Ignore(n, fi):
			return nil
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		if size += int64(len(b)); size > archive.MaxDecompressedChartSize {
			return fmt.Errorf("the chart is larger than %d bytes", archive.MaxDecompressedChartSize)
		}
		buf = append(buf, &archive.BufferedFile{Name: n, ModTime: fi.ModTime(), Data: bytes.TrimPrefix(b, utf8BOM)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.Chart, err)
	}
	chrt, err := loader.LoadFiles(buf)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.Chart, err)
	}
	if err := checkDependencies(chrt); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", h.Chart, err)
	}
	return chrt, nil
}

// checkDependencies checks that the chart carries the charts it depends on.
func checkDependencies(chrt *chart.Chart) error {
	var reqs []ci.Dependency
	for _, d := range chrt.Metadata.Dependencies {
		reqs = append(reqs, d)
	}
	return action.CheckDependencies(chrt, reqs)
}

// sourceHeader starts each manifest in a Helm release, naming its template.
const sourceHeader = "---\n# Source: "

// decodeManifest decodes a release's manifest, each object named by the
// template that rendered it.
func decodeManifest(manifest, namespace string) ([]templates.Object, error) {
	dec := &templates.Decoder{Namespace: namespace, Rendered: true}
	var objs []templates.Object
	for _, part := range strings.Split(manifest, sourceHeader) {
		file, text, _ := strings.Cut(part, "\n")
		if strings.TrimSpace(part) == "" {
			continue
		}
		fileObjs, err := dec.Decode(file, text)
		if err != nil {
			return nil, err
		}
		objs = append(objs, fileObjs...)
	}
	return objs, nil
}

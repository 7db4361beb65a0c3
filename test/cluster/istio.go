package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/shipbot/shipbot/deploy/crds"
	"github.com/shipbot/shipbot/test/cluster/bins"
)

// istioCRDFile is where the istio.io/api module keeps the generated CRDs.
const istioCRDFile = "kubernetes/customresourcedefinitions.gen.yaml"

// CRDResource is the CustomResourceDefinition resource, for the dynamic client.
var CRDResource = schema.GroupVersionResource{
	Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
}

// installIstioCRDs server-side applies the Istio CRDs of the istio.io/api version
// that shipbot's go.mod requires, and waits until all are Established. With
// versions, the networking.istio.io CRDs serve only those.
func (c *Cluster) installIstioCRDs(ctx context.Context, versions []string) error {
	dir, err := moduleDir(ctx, c.logw, "istio.io/api", istioAPIPinned)
	if err != nil {
		return err
	}
	crds, err := readManifests(filepath.Join(dir, istioCRDFile))
	if err != nil {
		return err
	}
	if len(versions) > 0 {
		for _, crd := range crds {
			if err := limitVersions(crd, "networking.istio.io", versions); err != nil {
				return err
			}
		}
	}
	return c.applyCRDs(ctx, "Istio", dir, crds)
}

// installShipbotCRDs applies deploy/crds.
func (c *Cluster) installShipbotCRDs(ctx context.Context) error {
	all, err := crds.All()
	if err != nil {
		return err
	}
	return c.applyCRDs(ctx, "shipbot", "deploy/crds", all)
}

// applyCRDs server-side applies CRDs and waits until all are Established.
func (c *Cluster) applyCRDs(ctx context.Context, what, dir string, crds []*unstructured.Unstructured) error {
	dyn, err := dynamic.NewForConfig(c.cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	client := dyn.Resource(CRDResource)
	start := time.Now()
	for _, crd := range crds {
		_, err := client.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: "shipbot-test-cluster", Force: true})
		if err != nil {
			return fmt.Errorf("apply CRD %s: %w", crd.GetName(), err)
		}
	}
	logf(c.logw, "applied %d %s CRDs from %s in %s", len(crds), what, dir, since(start))
	return c.poll(ctx, what+" CRDs Established", time.Minute, c.proc("kube-apiserver"), func(ctx context.Context) (bool, error) {
		for _, crd := range crds {
			got, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil || !Established(got) {
				return false, err
			}
		}
		return true, nil
	})
}

// limitVersions keeps, in a CRD of group, only the versions listed, served,
// the first of them present the storage version. A CRD with none of them
// (EnvoyFilter is v1alpha3 only) and CRDs of other groups are left alone.
func limitVersions(crd *unstructured.Unstructured, group string, keep []string) error {
	if g, _, _ := unstructured.NestedString(crd.Object, "spec", "group"); g != group {
		return nil
	}
	all, _, err := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if err != nil {
		return fmt.Errorf("CRD %s: spec.versions: %w", crd.GetName(), err)
	}
	var out []any
	for _, v := range all {
		if m, ok := v.(map[string]any); ok && slices.Contains(keep, fmt.Sprint(m["name"])) {
			m["served"], m["storage"] = true, len(out) == 0
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return unstructured.SetNestedSlice(crd.Object, out, "spec", "versions")
}

// Established reports whether a CustomResourceDefinition read with the dynamic
// client has the condition Established=True, i.e. its resource is being served.
func Established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" {
			return m["status"] == "True"
		}
	}
	return false
}

// istioAPIPinned is the istio.io/api version used while shipbot's go.mod does
// not require the module (go mod tidy drops it when nothing imports it).
const istioAPIPinned = "v1.31.1"

// moduleDir finds a module in the module cache, downloading it if it is
// missing: the version that shipbot's go.mod requires, else pinned. The
// download runs outside the main module, so shipbot's go.mod and go.sum stay untouched.
func moduleDir(ctx context.Context, logw io.Writer, module, pinned string) (string, error) {
	root, err := bins.RepoRoot()
	if err != nil {
		return "", err
	}
	var mod struct{ Version, Dir string }
	if err := goJSON(ctx, root, &mod, "list", "-m", "-json", module); err != nil {
		logf(logw, "using %s@%s: %v", module, pinned, err)
		mod.Version = pinned
	}
	if mod.Dir != "" {
		return mod.Dir, nil
	}
	if err := goJSON(ctx, os.TempDir(), &mod, "mod", "download", "-json", module+"@"+mod.Version); err != nil {
		return "", err
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("%s@%s: the go command reported no module directory", module, mod.Version)
	}
	return mod.Dir, nil
}

// goJSON runs a go command that prints JSON in dir and decodes its output into v.
func goJSON(ctx context.Context, dir string, v any, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("go %s: decode output: %w", strings.Join(args, " "), err)
	}
	return nil
}

// readManifests decodes every non-empty YAML document in path.
func readManifests(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64<<10)
	var objs []*unstructured.Unstructured
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if len(obj) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: obj})
		}
	}
}

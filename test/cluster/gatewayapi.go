package cluster

import (
	"context"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// gatewayAPICRDDir is where the sigs.k8s.io/gateway-api module keeps the
// CRDs of its standard channel.
const gatewayAPICRDDir = "config/crd/standard"

// gatewayAPIPinned is the sigs.k8s.io/gateway-api version used while
// shipbot's go.mod does not require the module.
const gatewayAPIPinned = "v1.6.3"

// installGatewayAPICRDs server-side applies the Gateway API CRDs (standard
// channel) of the version shipbot's go.mod requires, and waits until all are
// Established. The folder also holds a ValidatingAdmissionPolicy against
// unsafe upgrades, which is no CRD and is left out.
func (c *Cluster) installGatewayAPICRDs(ctx context.Context) error {
	dir, err := moduleDir(ctx, c.logw, "sigs.k8s.io/gateway-api", gatewayAPIPinned)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, gatewayAPICRDDir, "*.yaml"))
	if err != nil {
		return err
	}
	crdDir := filepath.Join(dir, gatewayAPICRDDir)
	var crds []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := readManifests(f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			}
		}
	}
	return c.applyCRDs(ctx, "Gateway API", crdDir, crds)
}

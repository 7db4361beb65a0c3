// Package kube talks to the Kubernetes clusters shipbot deploys to: it
// applies rendered objects with server-side apply, waits for rollouts and, when
// one fails, reads the reason from pod status and events.
package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply manager name shipbot owns fields under.
const FieldManager = "shipbot"

// Client is one cluster's API.
type Client struct {
	Name    string
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface

	mapperMu sync.Mutex
	mapper   *restmapper.DeferredDiscoveryRESTMapper
}

// Source says where a cluster's credentials come from: a kubeconfig file and
// context, or the service account shipbot runs as. It mirrors the config
// file's cluster entry, which kube does not import so that the release
// engine's types can appear in the config.
type Source struct {
	Name       string
	Kubeconfig string
	Context    string
	InCluster  bool
}

// RESTConfig builds a client config for a configured cluster.
func RESTConfig(c Source) (*rest.Config, error) {
	if c.InCluster {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: in-cluster config: %w", c.Name, err)
		}
		return rc, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.Kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.Context}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", c.Name, c.Kubeconfig, err)
	}
	return rc, nil
}

// New connects to a cluster. It makes no request until one is needed.
func New(name string, rc *rest.Config) (*Client, error) {
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		// Defaults of 5 QPS throttle a release that touches a handful of objects.
		rc.QPS, rc.Burst = 50, 100
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Discovery()))
	return &Client{Name: name, Kube: kc, Dynamic: dc, mapper: mapper}, nil
}

// Ping checks that the API server answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return nil
}

// mapping resolves a kind to its resource, refreshing discovery once if the
// kind is unknown (a CRD installed after shipbot started).
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	c.mapperMu.Lock()
	defer c.mapperMu.Unlock()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: no resource for %s: %w", c.Name, gvk, err)
	}
	return m, nil
}

// resource returns the dynamic client for an object's kind and namespace.
func (c *Client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := c.mapping(obj.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s has no namespace", obj.GetKind(), obj.GetName())
		}
		return c.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

// ErrInvalid marks objects the API server refused as invalid.
var ErrInvalid = errors.New("invalid object")

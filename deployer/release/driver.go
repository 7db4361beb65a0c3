package release

import (
	"context"
	"fmt"
	"sync"

	istio "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/templates"
)

// Driver carries out one strategy on a cluster. Every method is idempotent:
// the engine calls them again after a crash or on every requeue.
type Driver interface {
	// Ensure creates or updates the workloads and routing the release needs,
	// without moving traffic or replicas between versions.
	Ensure(ctx context.Context, r *Release) error
	// SetTarget makes one safe move towards percent on To: it never lowers
	// availability below the release's minimum, so it may take several calls.
	SetTarget(ctx context.Context, r *Release, percent int) error
	// Ready reports whether percent is fully in effect and its pods available.
	Ready(ctx context.Context, r *Release, percent int) (Readiness, error)
	// Finalize makes To the only version: From scaled to 0, routing plain.
	// When the release defers its scale-down, From keeps its pods, and
	// the routing sends it nothing, until ScaleDown.
	Finalize(ctx context.Context, r *Release) (done bool, err error)
	// Rollback makes From the only version again, restoring the routing
	// shipbot found before the release; To's scale-down is deferred as
	// Finalize defers From's.
	Rollback(ctx context.Context, r *Release) (done bool, err error)
	// ScaleDown scales gone, the version an ended release moved traffic
	// off, to 0 once its delay has passed. With serving set, no other
	// release needs the routing any more: once gone's pods are gone, it
	// leaves the routing plain for serving, as Finalize or Rollback do
	// when nothing is in its delay.
	ScaleDown(ctx context.Context, r *Release, gone, serving Revision) (done bool, err error)
}

// Readiness is what Ready found.
type Readiness struct {
	Done    bool
	Waiting string // what is not there yet, e.g. "web-v2: 3/10 available"
	Stuck   string // the Deployment to diagnose if the progress deadline passes
	Failure string // set when the Deployment itself reports it cannot progress
	// Retry says the next SetTarget can make what is missing, e.g. the
	// route weight once the pods are available: step again at once.
	Retry bool
}

// Cluster is what the drivers need of one cluster.
type Cluster struct {
	Kube  *kube.Client
	Istio istio.Interface // nil when the cluster has no Istio; canary with router istio needs it
	// Gateway is the Gateway API client; canary with router gatewayAPI needs it.
	Gateway gateway.Interface
	// IstioVersion is the networking.istio.io version to use, IstioV1 or
	// IstioV1beta1; empty asks the cluster's discovery once, when a canary
	// first needs it.
	IstioVersion string

	mu    sync.Mutex
	istio istioAPI // what IstioVersion, or discovery, chose
}

// istioAPI is the Istio client in the version the cluster serves. A failed
// discovery is not remembered: the next step asks again.
func (c *Cluster) istioAPI(ctx context.Context) (istioAPI, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.istio != nil {
		return c.istio, nil
	}
	v := c.IstioVersion
	if v == "" {
		var err error
		if v, err = detectIstio(ctx, c.Kube.Kube.Discovery()); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Kube.Name, err)
		}
	}
	c.istio = newIstioAPI(c.Istio, v)
	return c.istio, nil
}

// NewCluster connects to a cluster, with an Istio client on the same config.
func NewCluster(name string, rc *rest.Config) (*Cluster, error) {
	kc, err := kube.New(name, rc)
	if err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	ic, err := istio.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: istio client: %w", name, err)
	}
	gc, err := gateway.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: gateway API client: %w", name, err)
	}
	return &Cluster{Kube: kc, Istio: ic, Gateway: gc}, nil
}

// Clusters finds a cluster by the name a release records.
type Clusters interface {
	Cluster(ctx context.Context, name string) (*Cluster, error)
}

// ClusterMap is a fixed set of clusters by name.
type ClusterMap map[string]*Cluster

// Cluster returns the named cluster.
func (m ClusterMap) Cluster(_ context.Context, name string) (*Cluster, error) {
	c := m[name]
	if c == nil {
		return nil, fmt.Errorf("cluster %q: %w: not configured", name, ErrInvalid)
	}
	return c, nil
}

// Renderer renders an app's objects for one revision of a release, from
// the app's source (deployer.ReleaseRenderer).
type Renderer interface {
	Render(ctx context.Context, r *Release, rev Revision) ([]*unstructured.Unstructured, error)
}

// TemplateRenderer renders every release with one template, whatever its
// app: for tests, and tools that know the template.
type TemplateRenderer struct{ Template *templates.Template }

// Render renders r.Params with the revision's image and the release's replicas.
func (t TemplateRenderer) Render(_ context.Context, r *Release, rev Revision) ([]*unstructured.Unstructured, error) {
	tpl := t.Template
	if tpl == nil {
		return nil, fmt.Errorf("render %s %s: %w: the release engine has no renderer", r.App, rev.Name, ErrInvalid)
	}
	p := r.Params
	p.App, p.Project, p.Environment, p.Namespace = r.App, r.Project, r.Environment, r.Namespace
	p.Image, p.Replicas = rev.Image, r.Replicas
	objs, err := tpl.Render(p)
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", r.App, rev.Name, err)
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Obj
	}
	return out, nil
}

// newDriver picks the driver for a release's strategy.
func newDriver(ctx context.Context, r *Release, c *Cluster, w *workloads) (Driver, error) {
	switch r.Strategy {
	case Canary:
		return newCanary(ctx, r, c, w)
	case Groups:
		return &groups{w: w}, nil
	case BlueGreen:
		return &blueGreen{w: w}, nil
	case Rolling:
		return &rolling{w: w}, nil
	}
	return nil, fmt.Errorf("release %s: %w: unknown strategy %q", r.ID, ErrInvalid, r.Strategy)
}

// newCanary picks the canary's router.
func newCanary(ctx context.Context, r *Release, c *Cluster, w *workloads) (Driver, error) {
	switch r.router() {
	case RouterIstio:
		if c.Istio == nil {
			return nil, fmt.Errorf("release %s: %w: canary with router istio needs Istio on cluster %s", r.ID, ErrInvalid, r.Cluster)
		}
		api, err := c.istioAPI(ctx)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", r.ID, err)
		}
		if api.version() == IstioV1 {
			api = cachedIstio{istioAPI: api, view: w.view}
		}
		return &canary{w: w, router: func(r *Release) trafficRouter { return istioRouter{api: api, r: r} }}, nil
	case RouterGatewayAPI:
		if c.Gateway == nil {
			return nil, fmt.Errorf("release %s: %w: canary with router gatewayAPI needs a Gateway API client for cluster %s", r.ID, ErrInvalid, r.Cluster)
		}
		return &canary{w: w, router: func(r *Release) trafficRouter { return gatewayRouter{gw: c.Gateway, w: w, r: r} }}, nil
	}
	return nil, fmt.Errorf("release %s: %w: unknown router %q (want %s or %s)", r.ID, ErrInvalid, r.Router, RouterIstio, RouterGatewayAPI)
}

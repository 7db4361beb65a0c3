package release

import (
	"context"
	"sync"
	"time"

	istio "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Change is a Deployment that changed in a namespace whose releases the
// engine caches: a release waiting on its pods can step at once.
type Change struct {
	Cluster, Namespace string
	Deployment         *appsv1.Deployment
}

// caches keeps shared informers on the namespaces releases touch, one set
// per cluster and namespace, for as long as the Scheduler runs. Reads of the
// Deployments, Services, VirtualServices and DestinationRules a release
// steers then cost the apiserver nothing, as in a controller; what shipbot
// writes is fed back through a mutation cache, so a step never reads an
// object older than its own last write.
type caches struct {
	ctx     context.Context
	changed func(Change)

	mu     sync.Mutex
	spaces map[spaceKey]*space
}

type spaceKey struct{ cluster, namespace string }

// kind names the objects cached per namespace.
type kind string

const (
	kindDeployment      kind = "deployments"
	kindService         kind = "services"
	kindVirtualService  kind = "virtualservices"
	kindDestinationRule kind = "destinationrules"
)

// syncWithin bounds the wait for an informer's first list; retryFailed is
// how long reads go straight to the apiserver after one did not sync (a
// cluster without the Istio CRDs, or one that refuses the list).
const (
	syncWithin  = 10 * time.Second
	retryFailed = time.Minute
)

// space is the informers of one namespace of one cluster, started lazily:
// a namespace without Istio never lists VirtualServices.
type space struct {
	c     *caches
	key   spaceKey
	kube  kubernetes.Interface
	istio istio.Interface

	mu    sync.Mutex
	kinds map[kind]*kindCache
}

// kindCache is one informer and the writes shipbot made that the informer
// has not delivered yet.
type kindCache struct {
	inf    cache.SharedIndexInformer
	mc     cache.MutationCache
	cancel context.CancelFunc
	failed time.Time // zero once synced
}

func newCaches(ctx context.Context, changed func(Change)) *caches {
	return &caches{ctx: ctx, changed: changed, spaces: map[spaceKey]*space{}}
}

// space returns the informers of one namespace, nil when c is nil: the
// engine then reads from the apiserver.
func (c *caches) space(cluster string, cl *Cluster, namespace string) *space {
	if c == nil || c.ctx.Err() != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := spaceKey{cluster, namespace}
	sp := c.spaces[k]
	if sp == nil {
		sp = &space{c: c, key: k, kube: cl.Kube.Kube, istio: cl.Istio, kinds: map[kind]*kindCache{}}
		c.spaces[k] = sp
	}
	return sp
}

// of returns the synced cache of one kind, starting its informer on first
// use; nil when it cannot be used now, and the caller reads live.
func (sp *space) of(ctx context.Context, k kind) *kindCache {
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	kc := sp.kinds[k]
	if kc != nil && !kc.failed.IsZero() && time.Since(kc.failed) > retryFailed {
		kc.cancel()
		delete(sp.kinds, k)
		kc = nil
	}
	if kc == nil {
		kc = sp.start(k)
		if kc == nil {
			sp.mu.Unlock()
			return nil
		}
		sp.kinds[k] = kc
	}
	sp.mu.Unlock()
	if kc.inf.HasSynced() {
		return kc
	}
	if !kc.failed.IsZero() {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, syncWithin)
	defer cancel()
	if cache.WaitForCacheSync(wait.Done(), kc.inf.HasSynced) {
		return kc
	}
	if ctx.Err() == nil { // the informer, not the caller, gave up
		sp.mu.Lock()
		kc.failed = time.Now()
		sp.mu.Unlock()
	}
	return nil
}

// start makes and runs the informer of one kind; nil when the cluster has
// no client for it.
func (sp *space) start(k kind) *kindCache {
	ns := sp.key.namespace
	var inf cache.SharedIndexInformer
	idx := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	switch k {
	case kindDeployment:
		inf = appsinformers.NewDeploymentInformer(sp.kube, ns, 0, idx)
	case kindService:
		inf = coreinformers.NewServiceInformer(sp.kube, ns, 0, idx)
	case kindVirtualService, kindDestinationRule:
		if sp.istio == nil {
			return nil
		}
		if k == kindVirtualService {
			inf = istioinformers.NewVirtualServiceInformer(sp.istio, ns, 0, idx)
		} else {
			inf = istioinformers.NewDestinationRuleInformer(sp.istio, ns, 0, idx)
		}
	}
	// Ours survive a minute: long enough for the watch to deliver them,
	// short enough that a missed delete does not linger.
	kc := &kindCache{inf: inf, mc: cache.NewIntegerResourceVersionMutationCache(klog.Background(), inf.GetStore(), inf.GetIndexer(), time.Minute, true)}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { sp.seen(kc, obj) },
		UpdateFunc: func(_, obj any) { sp.seen(kc, obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if o, ok := obj.(runtime.Object); ok {
				kc.mc.OnDelete(o)
			}
			sp.seen(nil, obj)
		},
	})
	ctx, cancel := context.WithCancel(sp.c.ctx)
	kc.cancel = cancel
	go inf.RunWithContext(ctx)
	return kc
}

// seen tells the mutation cache what the informer now holds, and the
// Scheduler which Deployment changed.
func (sp *space) seen(kc *kindCache, obj any) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return
	}
	if kc != nil {
		kc.mc.OnAddOrUpdate(o)
	}
	if d, isDeploy := obj.(*appsv1.Deployment); isDeploy && sp.c.changed != nil {
		sp.c.changed(Change{Cluster: sp.key.cluster, Namespace: sp.key.namespace, Deployment: d})
	}
}

// get returns the newest copy of ns/name that the informer or shipbot's own
// writes hold, or false. The copy is shared: callers must not change it.
func (kc *kindCache) get(ns, name string) (any, bool) {
	if kc == nil {
		return nil, false
	}
	obj, ok, err := kc.mc.GetByKey(ns + "/" + name)
	return obj, ok && err == nil
}

// list returns the newest copy of every object of the namespace.
func (kc *kindCache) list(ns string) ([]any, error) {
	items, err := kc.inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		key, err := cache.MetaNamespaceKeyFunc(it)
		if err != nil {
			continue
		}
		if newer, ok, err := kc.mc.GetByKey(key); err == nil && ok {
			it = newer
		}
		out = append(out, it)
	}
	return out, nil
}

// wrote records an object as shipbot's write returned it.
func (kc *kindCache) wrote(obj runtime.Object) {
	if kc != nil && obj != nil {
		kc.mc.Mutation(obj)
	}
}

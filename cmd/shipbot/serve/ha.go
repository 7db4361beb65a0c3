package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/leader"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
)

// LeaseName is the Lease the replicas of store.backend kubernetes elect
// their leader on, in webhook.inbox's namespace.
const LeaseName = "shipbot"

// HA is one of several replicas with store.backend kubernetes. While
// another leads, it takes webhooks in, into the cluster inbox. When it
// leads, it rebuilds the store from the journal in the cluster, journals
// every write there, and runs everything Main runs. One HTTP server serves
// whichever of the two is current.
type HA struct {
	Config *config.Config
	Log    *slog.Logger
	Now    func() time.Time
	// Lease tunes the election; its namespace, name and identity come
	// from the config and Advertise. Zero values take leader's defaults.
	Lease leader.Config
	// Advertise is the host:port other replicas forward chat, API and
	// dashboard requests to while this one leads: $SHIPBOT_POD_IP and the
	// listen port when empty, else the address it listens on.
	Advertise string
	// Watch reloads Config.File() while this replica leads, as Main.Watch
	// does; a replica that comes to lead first puts in force the file as
	// it is then. A follower only takes webhooks in, with what takes a
	// restart, so it has nothing to reload.
	Watch bool

	follower *Intake
	current  atomic.Pointer[route]
	srv      *http.Server
	listener net.Listener
	elector  *leader.Elector
	rc       *rest.Config
	ns       string
	cancel   context.CancelFunc
	done     chan struct{}
	hangups  <-chan struct{} // closed once SIGHUP is no longer taken (with Watch)

	mu      sync.Mutex
	main    *Main       // while leading
	leading atomic.Bool // from Main's start until its journal stops
}

// Run starts serving as a follower and campaigning; it returns once both
// have started. Close stops it.
func (h *HA) Run(ctx context.Context) error {
	h.Log = cmpLog(h.Log)
	if h.Now == nil {
		h.Now = time.Now
	}
	in := h.Config.Webhook.Inbox
	if h.Config.Store.Backend != config.BackendKubernetes || in == nil {
		return errors.New("HA needs store.backend kubernetes and webhook.inbox")
	}
	var err error
	if h.rc, err = InboxRESTConfig(h.Config); err != nil {
		return err
	}
	h.ns = in.Namespace
	client, err := kubernetes.NewForConfig(h.rc)
	if err != nil {
		return err
	}
	if h.listener, err = net.Listen("tcp", h.Config.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", h.Config.Listen, err)
	}
	lease := h.Lease
	lease.Namespace, lease.Name, lease.Identity = in.Namespace, LeaseName, identity(h.advertise())
	if h.elector, err = leader.New(client, lease, h.Log); err != nil {
		h.listener.Close()
		return err
	}
	h.follower = &Intake{Config: h.Config, Log: h.Log, Now: h.Now, Embedded: true, Metrics: []prometheus.Collector{h.leaderGauge()}}
	if err := h.follower.Run(ctx); err != nil {
		h.listener.Close()
		return err
	}
	h.serve(h.follower.Handler(), false)
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
	ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.done = make(chan struct{})
	go func() {
		if err := h.srv.Serve(h.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.Log.Error("http server", "err", err)
		}
	}()
	if h.Watch {
		h.hangups = OnHangup(ctx, func() {
			if !h.leading.Load() {
				h.Log.Info("SIGHUP: this replica does not lead; the leader reloads the config", "file", h.Config.File())
			}
		})
	}
	go func() {
		defer close(h.done)
		if err := h.elector.Run(ctx, h.lead); err != nil {
			h.Log.Error("leader election", "err", err)
		}
	}()
	h.Log.Info("shipbot replica started", "addr", h.Addr(), "identity", h.elector.Identity(), "lease", in.Namespace+"/"+LeaseName)
	return nil
}

// route is what serves requests now.
type route struct {
	handler http.Handler
	leading bool
}

func (h *HA) serve(handler http.Handler, leading bool) {
	h.current.Store(&route{handler: handler, leading: leading})
}

// ServeHTTP serves a request with the leader's routes while leading.
// Otherwise webhooks and the probes are the follower's own, and the rest
// (chat, the API, the dashboard) goes to the leader.
func (h *HA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cur := h.current.Load()
	switch r.URL.Path {
	case intake.Path, "/healthz", "/readyz", "/metrics":
		cur.handler.ServeHTTP(w, r)
		return
	}
	if cur.leading {
		cur.handler.ServeHTTP(w, r)
		return
	}
	addr := leaderAddr(h.elector.Leader())
	if addr == "" || addr == h.advertise() {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "no shipbot replica leads at the moment; try again", http.StatusServiceUnavailable)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: addr})
			pr.Out.Host = pr.In.Host // signed requests (Slack) and links keep their host
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			h.Log.Warn("forward to the leader", "leader", addr, "err", err)
			w.Header().Set("Retry-After", "2")
			http.Error(w, "the leading replica did not answer; try again", http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// advertise is the address this replica is reached at by the others.
func (h *HA) advertise() string {
	if h.Advertise != "" {
		return h.Advertise
	}
	if ip := os.Getenv("SHIPBOT_POD_IP"); ip != "" {
		if _, port, err := net.SplitHostPort(h.Config.Listen); err == nil {
			return net.JoinHostPort(ip, port)
		}
	}
	return h.listener.Addr().String()
}

// identity names this replica in the Lease: unique per process, and
// carrying the address the others forward to.
func identity(addr string) string { return leader.DefaultIdentity() + "@" + addr }

// leaderAddr is the address in a Lease holder's identity.
func leaderAddr(id string) string {
	_, addr, _ := strings.Cut(id, "@")
	return addr
}

// lead runs while this replica holds the lease: it takes over the store,
// serves and runs Main, and hands back to the follower's routes when the
// lease is lost, the journal stops, or the replica shuts down.
func (h *HA) lead(ctx context.Context) {
	m, j, err := h.takeOver(ctx)
	if err != nil {
		h.Log.Error("take over as leader", "err", err)
		select { // the lease goes back; do not take it again at once
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	h.leading.Store(true)
	h.setMain(m)
	h.serve(m.Handler(), true)
	h.Log.Info("leading: the store is rebuilt and the engines run here", "term", j.Term())
	compact, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { kubestore.Compactor{Config: h.rc, Namespace: h.ns, Log: h.Log}.Run(compact) })
	select {
	case <-ctx.Done():
	case <-j.Stopped():
		h.Log.Error("the store's journal stopped taking writes; stepping down so that a new leader rebuilds")
	}
	j.Stop() // before anything else: what the engines still write is refused
	h.leading.Store(false)
	stop()
	wg.Wait()
	h.serve(h.follower.Handler(), false)
	h.setMain(nil)
	if err := m.Close(); err != nil {
		h.Log.Error("stop leading", "err", err)
	}
}

// takeOver rebuilds the store file from the cluster and starts Main on
// it, journaling to a new term.
func (h *HA) takeOver(ctx context.Context) (*Main, *kubestore.Journal, error) {
	loaded, err := kubestore.Load(ctx, h.rc, h.ns)
	if err != nil {
		return nil, nil, err
	}
	path := h.Config.Store.Path
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("remove the old working copy %s: %w", path, err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	for _, ws := range loaded.Sets {
		if err := st.Apply(ws); err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("rebuild the store: %w", err)
		}
	}
	if err := st.Close(); err != nil {
		return nil, nil, err
	}
	term := int64(1)
	for t := range maps.Keys(loaded.Seen) {
		term = max(term, t+1)
	}
	j, err := kubestore.StartTerm(ctx, h.rc, h.ns, term, loaded.Seen)
	if err != nil {
		return nil, nil, err
	}
	m := &Main{Config: h.Config, Watch: h.Watch, Log: h.Log, Now: h.Now, Journal: j, Embedded: true, Metrics: []prometheus.Collector{h.leaderGauge()}}
	if err := m.Run(ctx); err != nil {
		return nil, nil, err
	}
	h.Log.Info("rebuilt the store from the cluster", "transactions", len(loaded.Sets), "ignored", loaded.Ignored, "term", term)
	return m, j, nil
}

// leaderGauge is shipbot_leader, 1 from the start of this replica's
// engines until its journal stops, after which nothing they do is
// recorded: summed over the replicas it is 1 while one leads, 0 while none
// can (the apiserver is out of reach). It drops before the engines have
// finished stopping (up to the shutdown grace), which is also before the
// next leader may take the lease, so two replicas never show 1 at once.
func (h *HA) leaderGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shipbot_leader", Help: "1 while this replica leads: from the start of its engines until its journal stops.",
	}, func() float64 {
		if h.leading.Load() {
			return 1
		}
		return 0
	})
}

func (h *HA) setMain(m *Main) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.main = m
}

// Leader is the Main that runs while this replica leads, else nil.
func (h *HA) Leader() *Main {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.main
}

// Addr is the address the replica listens on.
func (h *HA) Addr() string {
	if h.listener == nil {
		return ""
	}
	return h.listener.Addr().String()
}

// Close stops leading (the engines first, then the lease goes back) and
// serving.
func (h *HA) Close() error {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		if h.hangups != nil {
			<-h.hangups
		}
	}
	var err error
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err = h.srv.Shutdown(ctx)
		cancel()
	}
	if h.follower != nil {
		err = errors.Join(err, h.follower.Close())
	}
	return err
}

// InboxRESTConfig is the client configuration of webhook.inbox's cluster.
func InboxRESTConfig(cfg *config.Config) (*rest.Config, error) {
	c, ok := cfg.Cluster(cfg.Webhook.Inbox.Cluster)
	if !ok {
		return nil, fmt.Errorf("webhook.inbox.cluster %q is not one of clusters[].name", cfg.Webhook.Inbox.Cluster)
	}
	return kube.RESTConfig(kube.Source{Name: c.Name, Kubeconfig: c.Kubeconfig, Context: c.Context, InCluster: c.InCluster})
}

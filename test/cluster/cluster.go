package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/shipbot/shipbot/test/cluster/bins"
)

// Options configures Start.
type Options struct {
	// Istio installs the Istio CRDs (networking.istio.io and friends) from istio.io/api.
	Istio bool
	// IstioVersions, when set, limits the networking.istio.io CRDs to these
	// versions (e.g. only "v1beta1", as an Istio older than 1.22 serves),
	// the first of them stored. Empty serves what istio.io/api ships.
	IstioVersions []string
	// GatewayAPI installs the Gateway API CRDs (gateway.networking.k8s.io,
	// standard channel) from sigs.k8s.io/gateway-api.
	GatewayAPI bool
	// Shipbot installs shipbot's own CRDs, from deploy/crds.
	Shipbot bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Audit makes the apiserver write an audit log of every request, which
	// AuditRequests reads: how many requests a client made, and which.
	Audit bool
}

// Cluster is a running local control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok with one fake node.
type Cluster struct {
	dir        string
	logw       io.Writer
	bins       bins.Binaries
	pki        *pki
	etcdURL    string
	cfg        *rest.Config
	client     *kubernetes.Clientset
	kubeconfig string
	procs      []*proc
	audit      bool // the apiserver writes auditLog
	apiPort    int  // kube-apiserver's port, kept across RestartAPIServer

	stopOnce sync.Once
	stopErr  error
}

// Start builds the binaries if needed, starts a control plane on loopback ports
// and returns once pods can be scheduled and admitted in the default namespace.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	begin := time.Now()
	executables, err := bins.Ensure(ctx, logw)
	if err != nil {
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	logf(logw, "binaries ready in %s", since(begin))
	dir, err := os.MkdirTemp("", "shipbot-cluster-")
	if err != nil {
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	c := &Cluster{dir: dir, logw: logw, bins: executables, audit: opts.Audit}
	if err := c.boot(ctx, opts); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	logf(logw, "cluster ready in %s, kubeconfig %s", since(begin), c.kubeconfig)
	return c, nil
}

// step is one timed part of start-up.
type step struct {
	name string
	run  func(context.Context) error
}

// boot runs the start-up steps in order, timing each.
func (c *Cluster) boot(ctx context.Context, opts Options) error {
	steps := []step{
		{"certificates", c.writeCerts},
		{"etcd", c.startEtcd}, // first: Stop relies on c.procs[0] being etcd
		{"kube-apiserver", c.startAPIServer},
		{"controllers, scheduler and kwok", c.startControllers},
		{"kwok node", c.registerNode},
		{"default service account", c.waitDefaultServiceAccount},
	}
	if opts.Istio {
		steps = append(steps, step{"Istio CRDs", func(ctx context.Context) error { return c.installIstioCRDs(ctx, opts.IstioVersions) }})
	}
	if opts.GatewayAPI {
		steps = append(steps, step{"Gateway API CRDs", c.installGatewayAPICRDs})
	}
	if opts.Shipbot {
		steps = append(steps, step{"shipbot CRDs", c.installShipbotCRDs})
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.run(ctx); err != nil {
			return err
		}
		logf(c.logw, "%s ready in %s", s.name, since(t))
	}
	return nil
}

// RESTConfig returns a copy of the admin (system:masters) client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

// Client returns an admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// KubeconfigPath returns the admin kubeconfig file; its context is named "local".
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// Dir returns the cluster's temporary directory with its logs, certificates and etcd data.
func (c *Cluster) Dir() string { return c.dir }

// Stop kills the control plane and removes its directory unless SHIPBOT_TEST_KEEP=1.
// It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		start := time.Now()
		defer func() { logf(c.logw, "stopped in %s", since(start)) }()
		// A process that died before Stop explains failed tests; say so while its log exists.
		var errs []error
		if err := c.anyExited(); err != nil {
			errs = append(errs, fmt.Errorf("died before Stop: %w", err))
		}
		defer func() { c.stopErr = errors.Join(errs...) }()
		// etcd goes last: an apiserver that loses etcd first can hang in its shutdown.
		if len(c.procs) > 1 {
			stopAll(c.procs[1:], 3*time.Second)
		}
		stopAll(c.procs[:min(1, len(c.procs))], 3*time.Second)
		if os.Getenv("SHIPBOT_TEST_KEEP") == "1" {
			logf(c.logw, "stopped; kept %s (SHIPBOT_TEST_KEEP=1)", c.dir)
			return
		}
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	})
	if c.stopErr != nil {
		return fmt.Errorf("stop local cluster: %w", c.stopErr)
	}
	return nil
}

func (c *Cluster) writeCerts(context.Context) error {
	p, err := writePKI(c.dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	c.pki = p
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p, err := startProc("etcd", c.bins.Etcd, c.dir, nil,
		"--name=etcd", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=etcd="+peer,
		"--unsafe-no-fsync", // the data is thrown away; fsync only costs time
		"--log-level=warn")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	c.etcdURL = client
	return c.poll(ctx, "etcd health", 30*time.Second, p, func(ctx context.Context) (bool, error) {
		return httpOK(ctx, client+"/health")
	})
}

func httpOK(ctx context.Context, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	c.apiPort = ports[0]
	p, err := c.execAPIServer()
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	if err := c.connect(fmt.Sprintf("https://127.0.0.1:%d", c.apiPort)); err != nil {
		return err
	}
	return c.waitAPIServer(ctx, p)
}

// execAPIServer starts kube-apiserver on c.apiPort.
func (c *Cluster) execAPIServer() (*proc, error) {
	args := c.apiserverArgs(c.apiPort)
	if c.audit {
		a, err := c.auditArgs()
		if err != nil {
			return nil, err
		}
		args = append(args, a...)
	}
	return startProc("kube-apiserver", c.bins.APIServer, c.dir, nil, args...)
}

// waitAPIServer waits for p, the apiserver, to be ready. /readyz also waits
// for the RBAC bootstrap roles and the built-in priority classes.
func (c *Cluster) waitAPIServer(ctx context.Context, p *proc) error {
	return c.poll(ctx, "kube-apiserver /readyz", time.Minute, p, func(ctx context.Context) (bool, error) {
		_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
}

func (c *Cluster) apiserverArgs(port int) []string {
	return []string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + c.dir,
		"--tls-cert-file=" + c.pki.servingCert, "--tls-private-key-file=" + c.pki.servingKey,
		"--client-ca-file=" + c.pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.pki.saPub,
		"--service-account-signing-key-file=" + c.pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		// A loopback address is not a valid endpoint for the kubernetes service.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
}

// connect builds the admin client configuration and writes the admin kubeconfig.
func (c *Cluster) connect(server string) error {
	c.cfg = &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: c.pki.caPEM, CertData: c.pki.adminCertPEM, KeyData: c.pki.adminKeyPEM,
		},
		QPS: 200, Burst: 400, // tests poll a lot; client-side throttling only slows them
	}
	client, err := kubernetes.NewForConfig(c.cfg)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	c.client = client
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig(server, c.pki), c.kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// kubeconfig embeds the credentials, so that copies of the file work anywhere.
func kubeconfig(server string, p *pki) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "local"
	return cfg
}

// poll calls cond every 100ms until it returns true. It fails when a child
// process exits, or when ctx ends or timeout passes, adding the tail of blame's log.
func (c *Cluster) poll(ctx context.Context, what string, timeout time.Duration, blame *proc,
	cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := c.anyExited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("waiting for %s: %w", what, ctx.Err())
			if last != nil {
				err = fmt.Errorf("%w (last error: %v)", err, last)
			}
			if blame == nil {
				return err
			}
			return blame.failure(err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// proc returns the child process with the given name, or nil.
func (c *Cluster) proc(name string) *proc {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// anyExited returns an error naming every child process that has ended, with its log tail.
func (c *Cluster) anyExited() error {
	var errs []error
	for _, p := range c.procs {
		if done, err := p.exited(); done {
			errs = append(errs, p.failure(fmt.Errorf("exited: %v", err)))
		}
	}
	return errors.Join(errs...)
}

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "cluster: "+strings.TrimSuffix(format, "\n")+"\n", args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
)

// intakeInbox is where the webhook endpoint stores what it acknowledges,
// and what to call after: the store, whose worker is woken; or, with
// webhook.inbox, the cluster's Delivery objects, which the relay moves
// into the store (start runs it).
func (m *Main) intakeInbox() (intake.Inbox, func(), error) {
	if m.Config.Webhook.Inbox == nil {
		return m.store, m.worker.Wake, nil
	}
	var err error
	m.clusterInbox, err = clusterInbox(m.Config)
	return m.clusterInbox, nil, err
}

// clusterInbox is the config's webhook.inbox.
func clusterInbox(cfg *config.Config) (*kubestore.Inbox, error) {
	rc, err := InboxRESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	return kubestore.NewInbox(rc, cfg.Webhook.Inbox.Namespace)
}

// relay moves the cluster's deliveries into the store until ctx ends.
func (m *Main) relay(ctx context.Context) {
	kubestore.Relay{From: m.clusterInbox, To: m.store, Moved: m.worker.Wake, Log: m.Log}.Run(ctx)
}

// Intake is a replica that only takes webhooks in (`shipbot intake`): it
// checks and stores them in the cluster's inbox (webhook.inbox), from
// which the engine's relay takes them. It has no store and acts on
// nothing, so any number can run beside the one engine, and GitLab's
// deliveries are acknowledged while the engine restarts.
type Intake struct {
	Config *config.Config
	Log    *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Embedded leaves serving to HA: Run does not listen, and Handler is
	// what to serve.
	Embedded bool
	// Metrics are served at /metrics beside the intake's own.
	Metrics []prometheus.Collector

	inbox    *kubestore.Inbox
	echo     *echo.Echo
	listener net.Listener
	served   sync.WaitGroup
}

// Run connects to the inbox's cluster and starts serving.
func (i *Intake) Run(ctx context.Context) error {
	in := i.Config.Webhook.Inbox
	if in == nil {
		return errors.New("shipbot intake stores webhooks in a cluster: set webhook.inbox (cluster and namespace) in " + i.Config.File())
	}
	i.Log = cmpLog(i.Log)
	if i.Now == nil {
		i.Now = time.Now
	}
	var err error
	if i.inbox, err = clusterInbox(i.Config); err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registry.MustRegister(i.Metrics...)
	e := newEcho()
	intake.NewHandler(webhookHandler(i.Config, i.inbox, i.Log, i.Now), registry).Register(e)
	registerProbes(e, i.readyz, registry)
	i.echo = e
	if i.Embedded {
		return nil
	}
	if i.listener, err = net.Listen("tcp", i.Config.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", i.Config.Listen, err)
	}
	i.served.Add(1)
	go func() {
		defer i.served.Done()
		if err := e.Server.Serve(i.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			i.Log.Error("http server", "err", err)
		}
	}()
	i.Log.Info("shipbot intake started", "addr", i.Addr(), "inbox", in.Cluster+"/"+in.Namespace)
	return nil
}

// readyz reports ready while the cluster's inbox can be read: a replica
// that could not store deliveries would only answer GitLab with errors.
func (i *Intake) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	if err := i.inbox.Ping(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "inbox: "+err.Error()+"\n")
	}
	return c.String(http.StatusOK, "inbox: ok\n")
}

// Handler serves the intake's routes.
func (i *Intake) Handler() http.Handler { return i.echo }

// Addr is the address the server listens on.
func (i *Intake) Addr() string {
	if i.listener == nil {
		return ""
	}
	return i.listener.Addr().String()
}

// Close stops serving once the requests in hand are answered.
func (i *Intake) Close() error {
	if i.echo == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := i.echo.Shutdown(ctx)
	i.served.Wait()
	return err
}

func cmpLog(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

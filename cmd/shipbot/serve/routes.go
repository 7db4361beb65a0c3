package serve

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shipbot/shipbot/bot/api"
	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
)

// Bounds on a client's pace. Without them a client that sends its headers
// or body a byte a minute, or keeps idle connections open, holds a
// connection and a goroutine for as long as it likes. ReadTimeout covers a
// webhook body of up to intake.maxBodyBytes. There is no write timeout:
// each handler bounds its own calls.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	idleTimeout       = 2 * time.Minute
)

func (m *Main) routes() (*echo.Echo, error) {
	e := newEcho(m.track)
	inbox, accepted, err := m.intakeInbox()
	if err != nil {
		return nil, err
	}
	hook := webhookHandler(m.Config, inbox, m.Log, m.Now)
	hook.Accepted = accepted
	intake.NewHandler(hook, m.registry).Register(e)
	apiOpts := api.Options{Releases: m.releases, Records: m.store, Token: m.Config.API.Token.Value(), Log: m.Log, Now: m.Now}
	if m.gitlab != nil && m.surfaces.ops != nil {
		// People may use their own GitLab tokens, with their roles checked.
		apiOpts.People, apiOpts.Ops, apiOpts.Deploys = m.gitlab, m.surfaces.ops, m.surfaces.deploys
	}
	api.New(apiOpts).Register(e)
	if m.signin != nil {
		m.signin.Register(e) // once, for every page that signs people in
	}
	m.registerSurfaces(e)
	m.registerDashboard(e)
	registerProbes(e, m.readyz, m.registry)
	return e, nil
}

// webhookHandler is the webhook endpoint as cfg sets it up, the same on
// serve and on intake replicas.
func webhookHandler(cfg *config.Config, inbox intake.Inbox, log *slog.Logger, now func() time.Time) intake.Handler {
	return intake.Handler{
		Secret: cfg.GitLab.WebhookSecret.Value(), Projects: cfg.HookProjects(), MaxBody: cfg.Webhook.MaxBodyBytes,
		Inbox: inbox, Log: log, Now: now,
	}
}

// newEcho is an Echo server with the bounds on a client's pace, that
// recovers from a handler's panic.
func newEcho(mw ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Server.ReadHeaderTimeout, e.Server.ReadTimeout, e.Server.IdleTimeout = readHeaderTimeout, readTimeout, idleTimeout
	e.Use(append([]echo.MiddlewareFunc{middleware.Recover()}, mw...)...)
	return e
}

// registerProbes serves /healthz, /readyz and /metrics.
func registerProbes(e *echo.Echo, readyz echo.HandlerFunc, registry *prometheus.Registry) {
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry})))
}

// track counts the requests in hand, so that Close waits for them before it
// closes the store they may still write to.
func (m *Main) track(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		m.inflight.Add(1)
		defer m.inflight.Done()
		return next(c)
	}
}

// readyz reports ready when the store is open and every cluster answers.
// A refused config reload is reported under "config" but leaves shipbot
// ready, as in Prometheus: the previous config still serves, and taking
// every replica out of service for a bad file would turn a typo into an
// outage.
func (m *Main) readyz(c echo.Context) error {
	checks := map[string]string{}
	if m.reloads != nil {
		checks["config"] = m.reloads.status()
	}
	ok := true
	if err := m.store.Ping(); err != nil {
		checks["store"], ok = err.Error(), false
	} else {
		checks["store"] = "ok"
	}
	for name, err := range m.pings.get(c.Request().Context(), m.clusters) {
		if err != nil {
			// The answer is unauthenticated: the cause, which may name the
			// API server's address, goes to the log only.
			m.Log.Warn("readyz: cluster unreachable", "cluster", name, "err", err)
			checks["cluster/"+name], ok = "unreachable", false
		} else {
			checks["cluster/"+name] = "ok"
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	return c.JSON(code, checks)
}

// pingTTL is how long the clusters' answers stand for /readyz. Kubelets,
// load balancers and people probe often, from every replica; without it
// each probe is a request to every API server.
const pingTTL = 5 * time.Second

// pings keeps the clusters' last answers for pingTTL. Probes that come
// while the clusters are being asked wait for that answer.
type pings struct {
	mu      sync.Mutex
	at      time.Time // when results were taken
	results map[string]error
}

func (p *pings) get(ctx context.Context, clusters map[string]*kube.Client) map[string]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.results != nil && time.Since(p.at) < pingTTL {
		return p.results
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	results := make(map[string]error, len(clusters))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, cl := range clusters {
		wg.Go(func() {
			err := cl.Ping(ctx)
			mu.Lock()
			results[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	p.at, p.results = time.Now(), results
	return results
}

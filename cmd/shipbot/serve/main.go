// Package serve is shipbot's start-up: Main builds the store, the clusters,
// the surfaces, the engines, the inbox worker and the HTTP server in one
// pass, and runs them until Close. `shipbot serve` and the end-to-end tests
// run the same Main.
package serve

import (
	"cmp"
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

	"github.com/shipbot/shipbot/bot/gitlab"
	"github.com/shipbot/shipbot/bot/gitlabstatus"
	"github.com/shipbot/shipbot/bot/govern"
	"github.com/shipbot/shipbot/bot/inbox"
	"github.com/shipbot/shipbot/bot/mergerequest"
	"github.com/shipbot/shipbot/bot/signin"
	"github.com/shipbot/shipbot/deployer"
	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
	"github.com/shipbot/shipbot/deployer/release"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/deployer/store/kubestore"
	"github.com/shipbot/shipbot/templates/source"
)

// Main is one running shipbot.
type Main struct {
	// Config is the config shipbot starts with. What a reload may change
	// is read through live; the rest is built from Config once (see
	// restartOnly in reload.go).
	Config *config.Config
	// Watch reloads Config.File() on SIGHUP and when it changes on disk,
	// and at start if the file is no longer the bytes Config was parsed
	// from (Config.Sum; a Config not parsed from the file is replaced by
	// it).
	Watch bool
	Log   *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Journal, when set, records every write to the store (see
	// store.Journal); HA sets it.
	Journal store.Journal
	// Embedded leaves serving to whoever runs Main (HA): Run does not
	// listen, and Handler is what to serve.
	Embedded bool
	// Metrics are served at /metrics beside Main's own (HA's
	// shipbot_leader).
	Metrics []prometheus.Collector

	live     *config.Live // the config in force; Reload swaps it
	reloads  *reloads
	store    *store.Store
	clusters map[string]*kube.Client
	staged   release.ClusterMap // the same clusters, with Istio clients, for staged releases
	releases *release.Scheduler
	// ReleaseNotifiers receive every staged-release event (chat, outgoing
	// webhooks); set before Run.
	ReleaseNotifiers []release.Notifier
	// ReleasePoll is how often a release waiting for pods looks again; 500ms when 0.
	ReleasePoll time.Duration
	surfaces    *surfaces
	gitlab      *gitlab.Client       // nil without a GitLab token
	signin      *signin.SignIn       // nil without a signin section
	tracer      *gitlabstatus.Tracer // commit statuses and environments; nil without a GitLab token
	notifier    deployer.Notifier
	deployNote  deployer.Notifier // everyone told of deploys, previews and refused builds
	sources     deployer.Sources  // apps' repositories and remote charts
	engine      *deployer.DeployRunner
	planner     *mergerequest.Planner // merge request plans; nil without a GitLab token
	worker      *inbox.Worker
	// clusterInbox holds the webhooks acknowledged with webhook.inbox set,
	// until the relay moves them into store; nil without.
	clusterInbox *kubestore.Inbox
	commands     *mergerequest.CommandWorker // merge request comment commands; nil without a GitLab token
	echo         *echo.Echo
	listener     net.Listener
	registry     *prometheus.Registry
	pings        pings // the clusters' last answers, for /readyz

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	inflight sync.WaitGroup // HTTP requests in hand
}

// Run opens the store, connects the clusters and starts serving. It returns
// once everything is started; Close stops it.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.live = config.NewLive(m.Config)
	retention := m.retention()
	if m.store, err = store.Open(m.Config.Store.Path, store.Options{Now: m.Now, Retention: &retention, Compact: true, Journal: m.Journal}); err != nil {
		return err
	}
	if m.clusters, m.staged, err = connect(m.Config); err != nil {
		return err
	}
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(m.Metrics...)
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shipbot_inbox_depth", Help: "Webhook deliveries acknowledged but not yet processed.",
	}, func() float64 { return float64(m.store.InboxDepth()) }))
	m.reloads = newReloads(m.registry, m.Now())
	if err := m.connectGitLab(); err != nil {
		return err
	}
	if err := m.buildSignIn(); err != nil {
		return err
	}
	// One pass, each part built from what exists already: the surfaces that
	// post, the engines that tell them what happens, then who may act on
	// the engines and the surfaces that take their clicks.
	if m.surfaces, err = m.buildPosters(); err != nil {
		return err
	}
	if err := m.buildEngines(); err != nil {
		return err
	}
	if err := m.buildActors(); err != nil {
		return err
	}
	apps := deployer.Apps{Config: m.live, Sources: m.sources}
	var notes inbox.Notes
	var plan func(projectID int64, project string, iid int64)
	if m.gitlab != nil {
		mp := deployer.MergePlanner{Apps: apps, Clusters: m.clusters}
		m.planner = mergerequest.NewPlanner(mergerequest.Planner{API: m.gitlab, Store: m.store, Plan: mp.Plan, Log: m.Log})
		plan = func(projectID int64, project string, iid int64) {
			m.planner.Schedule(mergerequest.PlanRequest{ProjectID: projectID, Project: project, IID: iid})
		}
		// Apps is set, so a command's previews are those its commit sees
		// in the config in force.
		cmds := &mergerequest.Commands{API: m.gitlab,
			Ops: m.surfaces.ops, Releases: m.releases, Plans: m.planner, Apps: apps, Deploys: m.surfaces.deploys, Log: m.Log, Now: m.Now}
		c := m.Config.Commands
		m.commands = mergerequest.NewCommandWorker(mergerequest.CommandWorker{Commands: cmds, Store: m.store,
			Timeout: c.Timeout.Duration, PerMinute: c.PerUserPerMinute, Burst: c.Burst, Log: m.Log, Now: m.Now})
		notes = m.commands
	}
	m.worker = inbox.NewWorker(inbox.Worker{Config: m.live, Store: m.store, Deploys: m.engine,
		Releases: m.releases, Notes: notes, Log: m.Log, Now: m.Now,
		Apps: apps, Notifier: m.deployNote, Plan: plan})
	if m.listener, err = m.listen(); err != nil {
		return err
	}
	if m.echo, err = m.routes(); err != nil {
		return err
	}
	w, err := m.watchConfig()
	if err != nil {
		return err
	}
	m.start(ctx, w)
	m.Log.Info("shipbot started", "addr", m.Addr(), "store", m.store.Path(), "clusters", len(m.clusters))
	return nil
}

// buildEngines builds the deploy runner, and the release stepper with its
// scheduler; each tells the posting surfaces what happens, and the release
// stepper notes in each release's history who was told.
func (m *Main) buildEngines() (err error) {
	deployNotifiers := m.surfaces.deployNotifiers
	if m.notifier != nil {
		deployNotifiers = append([]deployer.Notifier{m.notifier}, deployNotifiers...)
	}
	m.deployNote = deployFanout(deployNotifiers)
	m.engine, err = deployer.NewDeployRunner(deployer.Options{
		Config: m.live, Store: m.store, Clusters: m.clusters, Sources: m.sources, Log: m.Log, Now: m.Now, Registry: m.registry, Freezes: m.freezes(),
		Notifier: m.deployNote,
	})
	if err != nil {
		return err
	}
	audience := m.surfaces.audience
	if m.tracer != nil {
		audience = append(audience, release.Listener{Name: "gitlab", Notifier: m.tracer})
	}
	for _, n := range m.ReleaseNotifiers {
		audience = append(audience, release.Listener{Name: "custom", Notifier: n})
	}
	stepper, err := release.NewStepper(release.Options{Store: m.store, Clusters: m.staged, Log: m.Log,
		Notifier: audience, Renderer: deployer.ReleaseRenderer{Config: m.live, Sources: m.sources}, Freezes: m.freezes(), MRApprovals: m.mrApprovals(),
		Clock: clock(m.Now), Poll: cmp.Or(m.ReleasePoll, 500*time.Millisecond)})
	if err != nil {
		return err
	}
	m.releases = &release.Scheduler{Stepper: stepper, Log: m.Log}
	return nil
}

// freezes are the config's freeze windows and, with a GitLab token, the
// freeze periods of each release's GitLab project.
func (m *Main) freezes() release.Freezes {
	all := release.AllFreezes{config.Freezes{Config: m.live}}
	if m.gitlab != nil {
		all = append(all, &govern.GitLabFreezes{GitLab: m.gitlab})
	}
	return all
}

// mrApprovals reads merge request approvals for mergeRequestApproval
// gates; nil without a GitLab token, which fails such gates.
func (m *Main) mrApprovals() release.MergeRequestApprovals {
	if m.gitlab == nil {
		return nil
	}
	return govern.MRApprovals{GitLab: m.gitlab}
}

func connect(cfg *config.Config) (map[string]*kube.Client, release.ClusterMap, error) {
	out, staged := map[string]*kube.Client{}, release.ClusterMap{}
	for _, c := range cfg.Clusters {
		rc, err := kube.RESTConfig(kube.Source{Name: c.Name, Kubeconfig: c.Kubeconfig, Context: c.Context, InCluster: c.InCluster})
		if err != nil {
			return nil, nil, err
		}
		if out[c.Name], err = kube.New(c.Name, rc); err != nil {
			return nil, nil, err
		}
		if staged[c.Name], err = release.NewCluster(c.Name, rc); err != nil {
			return nil, nil, err
		}
	}
	return out, staged, nil
}

// connectGitLab sets up the API client and what needs it: the merge request
// comments and environments. Without a token shipbot deploys but stays mute.
func (m *Main) connectGitLab() error {
	m.sources = deployer.Sources{Repos: deployer.NewRepos(nil), Charts: &source.Charts{}}
	if m.Config.GitLab.Token.IsZero() {
		m.Log.Warn("no gitlab.token: merge request comments, environments, commands and sources from repositories are off")
		return nil
	}
	var err error
	if m.gitlab, err = gitlab.New(m.Config.GitLab.BaseURL, m.Config.GitLab.Token.Value()); err != nil {
		return err
	}
	m.sources.Repos = deployer.NewRepos(m.gitlab)
	m.tracer = gitlabstatus.New(gitlabstatus.Options{
		API: m.gitlab, GitLabURL: m.Config.GitLab.BaseURL,
		PublicURL: m.Config.PublicURL, Host: gitlabstatus.ConfigHost(m.live),
	})
	m.notifier = m.tracer.Deploys(&mergerequest.Notifier{API: m.gitlab, Store: m.store, Log: m.Log})
	return nil
}

// start runs everything built, and w (nil: none) until Close.
func (m *Main) start(ctx context.Context, w *watcher) {
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if w != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.runWatcher(ctx, w) }()
	}
	if _, ok := m.Config.PreviewEnvironment(); ok && m.gitlab != nil {
		r := &mergerequest.Reconciler{API: m.gitlab, Store: m.store, Deploys: m.engine, Log: m.Log, Now: m.Now}
		m.wg.Add(1)
		go func() { defer m.wg.Done(); r.Run(ctx, m.Config.Previews.GCInterval.Duration) }()
	}
	m.surfaces.run(ctx, func(f func()) {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); f() }()
	})
	if m.planner != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.planner.Run(ctx) }()
	}
	if m.commands != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); _ = m.commands.Run(ctx) }()
	}
	if m.clusterInbox != nil {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.relay(ctx) }()
	}
	m.wg.Add(2)
	go func() { defer m.wg.Done(); m.releases.Stepper.RunRetire(ctx, time.Minute) }()
	go func() { defer m.wg.Done(); m.prune(ctx) }()
	if r := m.Config.Notify.RemindPaused; !r.Off {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.releases.Stepper.RunReminders(ctx, release.Reminders{After: r.After.Duration, Every: r.Every.Duration}, time.Minute)
		}()
	}
	m.wg.Add(3)
	go func() { defer m.wg.Done(); _ = m.releases.Run(ctx) }()
	// Requests see ctx end when Close gives up waiting for them, so that
	// one stuck on a slow GitLab returns before the store closes.
	m.echo.Server.BaseContext = func(net.Listener) context.Context { return ctx }
	if m.listener != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.echo.Server.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.Log.Error("http server", "err", err)
			}
		}()
	}
	go func() { defer m.wg.Done(); _ = m.worker.Run(ctx) }()
	go func() { defer m.wg.Done(); _ = m.engine.Run(ctx) }()
}

// Addr is the address the server listens on, e.g. 127.0.0.1:43121 for ":0".
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// listen opens Config.Listen, unless Main is embedded.
func (m *Main) listen() (net.Listener, error) {
	if m.Embedded {
		return nil, nil
	}
	ln, err := net.Listen("tcp", m.Config.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", m.Config.Listen, err)
	}
	return ln, nil
}

// Handler serves shipbot's routes; HA serves it while this replica leads.
func (m *Main) Handler() http.Handler { return m.echo }

// Releases is the staged-release runner, for tests and the API.
func (m *Main) Releases() *release.Scheduler { return m.releases }

// Store exposes the store, for tests and the CLI.
func (m *Main) Store() *store.Store { return m.store }

// shutdownGrace bounds how long in-flight HTTP requests may finish.
const shutdownGrace = 10 * time.Second

// Close stops serving, lets the worker finish the delivery in hand and the
// engine stop its deploys (they resume on the next start), then closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.echo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		errs = append(errs, m.echo.Shutdown(ctx))
		cancel()
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.inflight.Wait()
	m.surfaces.close()
	if m.store != nil {
		errs = append(errs, m.store.Close())
		m.store = nil
	}
	return errors.Join(errs...)
}

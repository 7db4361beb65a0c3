package serve

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/deployer/config"
)

// Reload reads Config.File() again and, when it is valid, its apps'
// sources check and it changes no key that takes a restart (restartKeys),
// puts it in force: the next delivery, deploy, release and authorization
// use it. Otherwise the config in force stays, and why is logged, counted
// in shipbot_config_reloads_total and shown on /readyz. Work already in
// hand keeps the config it started with, and a release keeps the stages
// recorded when it was created. Call it after Run.
func (m *Main) Reload() error { return m.reload(false) }

// reload is Reload; with onlyIfChanged it does nothing when the file's
// bytes are those it last read, since a watched directory also changes
// for files that are not the config (editors' swap files, for one).
func (m *Main) reload(onlyIfChanged bool) error {
	r := m.reloads
	r.mu.Lock()
	defer r.mu.Unlock()
	file := m.Config.File()
	b, err := os.ReadFile(file)
	if err == nil {
		sum := sha256.Sum256(b)
		if onlyIfChanged && sum == r.sum {
			return nil
		}
		r.sum = sum
	}
	var next *config.Config
	if err == nil {
		next, err = config.Parse(file, b)
	}
	if err == nil {
		err = m.checkReload(next)
	}
	r.done(m.Now(), err)
	if err != nil {
		m.Log.Error("config reload failed; the previous config stays in force", "file", file, "err", err)
		return err
	}
	m.live.Store(next)
	m.Log.Info("config reloaded", "file", file, "environments", len(next.Environments), "apps", len(next.Apps))
	return nil
}

// checkReload refuses a config that start-up would refuse, or that
// changes what start-up built once.
func (m *Main) checkReload(next *config.Config) error {
	if keys := restartKeys(m.Config, next); len(keys) > 0 {
		return &needsRestart{keys: keys}
	}
	for _, a := range next.Apps {
		if err := m.sources.CheckSource(a); err != nil {
			return &badSource{err: err}
		}
	}
	return nil
}

// needsRestart is a reload refused because it changes keys that only a
// restart applies. Only the keys' names are shown, so it may go on /readyz.
type needsRestart struct{ keys []string }

func (e *needsRestart) Error() string {
	return "changes keys that take a restart: " + strings.Join(e.keys, ", ")
}

// badSource is a reload refused because an app's source does not check.
type badSource struct{ err error }

func (e *badSource) Error() string { return e.err.Error() }
func (e *badSource) Unwrap() error { return e.err }

// restartOnly are the keys start-up reads once, from Main.Config, to build
// the listener, the store, the clusters, the surfaces and what they hold.
// A reload that changes one is refused whole, rather than half applied.
// Keep in step with docs/CONFIG.md, "Reloading".
var restartOnly = []struct {
	key string
	of  func(*config.Config) any
}{
	{"listen", func(c *config.Config) any { return c.Listen }},
	{"log", func(c *config.Config) any { return c.Log }},
	{"gitlab", func(c *config.Config) any { return c.GitLab }},
	{"webhook", func(c *config.Config) any { return c.Webhook }},
	{"store", func(c *config.Config) any { return c.Store }},
	{"clusters", func(c *config.Config) any { return c.Clusters }},
	{"publicURL", func(c *config.Config) any { return c.PublicURL }},
	{"api", func(c *config.Config) any { return c.API }},
	{"dashboard", func(c *config.Config) any { return c.Dashboard }},
	{"signin", func(c *config.Config) any { return c.SignIn }},
	{"slack", func(c *config.Config) any { return c.Slack }},
	{"dingtalk", func(c *config.Config) any { return c.DingTalk }},
	{"notify", func(c *config.Config) any { return c.Notify }},
	{"users", func(c *config.Config) any { return c.Users }},
	{"commands", func(c *config.Config) any { return c.Commands }},
	{"previews", func(c *config.Config) any { return c.Previews }},
	{"forbidSelfApproval", func(c *config.Config) any { return c.ForbidSelfApproval }},
	// Webhook intake checks tokens and pinned ids with the list it was built with.
	{"projects[].id, projects[].webhookSecret, apps[].projectID", func(c *config.Config) any {
		return slices.SortedFunc(slices.Values(c.HookProjects()), func(a, b config.HookProject) int { return strings.Compare(a.Path, b.Path) })
	}},
	// The preview reconciler runs only when there is a preview environment at start.
	{"environments[].refs.mergeRequests", func(c *config.Config) any { _, ok := c.PreviewEnvironment(); return ok }},
	// The dashboard lists environments, and allows readers, as of start.
	{"environments[].name (the dashboard's list)", func(c *config.Config) any {
		if c.Dashboard == nil {
			return nil
		}
		return environmentNames(c)
	}},
	{"apps[].project, projects[].path (the dashboard's readers)", func(c *config.Config) any {
		if c.Dashboard == nil || c.Dashboard.Access != config.DashboardGitLab {
			return nil
		}
		return slices.Sorted(slices.Values(dashboardProjects(c)))
	}},
}

// restartKeys names the restart-only keys whose values differ.
func restartKeys(running, next *config.Config) []string {
	var out []string
	for _, k := range restartOnly {
		if !reflect.DeepEqual(k.of(running), k.of(next)) {
			out = append(out, k.key)
		}
	}
	return out
}

// reloads counts reloads and keeps the last one's outcome for /readyz.
type reloads struct {
	mu   sync.Mutex // one reload at a time; guards the fields below
	sum  [sha256.Size]byte
	at   time.Time // of the last reload, or start
	last error     // of the last reload; nil when it succeeded

	total       *prometheus.CounterVec
	successful  prometheus.Gauge
	successTime prometheus.Gauge
}

func newReloads(reg prometheus.Registerer, now time.Time) *reloads {
	r := &reloads{
		at: now,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_config_reloads_total", Help: "Config reloads by result (success, failure).",
		}, []string{"result"}),
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shipbot_config_last_reload_successful", Help: "1 when the last config reload succeeded, 0 when the config in force is older than the file.",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shipbot_config_last_reload_success_timestamp_seconds", Help: "When the config in force was loaded (start or last successful reload).",
		}),
	}
	r.total.WithLabelValues("success")
	r.total.WithLabelValues("failure")
	r.successful.Set(1)
	r.successTime.Set(float64(now.Unix()))
	reg.MustRegister(r.total, r.successful, r.successTime)
	return r
}

// done records a reload's outcome; r.mu is held.
func (r *reloads) done(at time.Time, err error) {
	r.at, r.last = at, err
	if err != nil {
		r.total.WithLabelValues("failure").Inc()
		r.successful.Set(0)
		return
	}
	r.total.WithLabelValues("success").Inc()
	r.successful.Set(1)
	r.successTime.Set(float64(at.Unix()))
}

// status is the config's line on /readyz. The answer is unauthenticated,
// so a file's problems, which may quote its values, go to the log only;
// only the names of restart-only keys are shown.
func (r *reloads) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return "ok"
	}
	why := "invalid file, see the log"
	var nr *needsRestart
	var bs *badSource
	switch {
	case errors.As(r.last, &nr):
		why = nr.Error()
	case errors.As(r.last, &bs):
		why = "an app's source does not check, see the log"
	case errors.Is(r.last, os.ErrNotExist) || errors.Is(r.last, os.ErrPermission):
		why = "file unreadable, see the log"
	}
	return fmt.Sprintf("reload at %s refused (%s); the previous config stays in force", r.at.UTC().Format(time.RFC3339), why)
}
